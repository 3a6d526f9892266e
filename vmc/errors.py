"""The exceptions of the public API (`import vmc`); each maps to one exit code of `vmc run`.

    InputError      bad input, found before any work          exit code 2
    RunError        the run could not go on (output, ranks)   exit code 1
    NumericalError  diverged or not finite (a RunError)       exit code 1
    Interrupted     stopped by a signal, checkpointed         exit code 3

Their messages are the one-line messages the command line prints.
"""


class InputError(ValueError):
    """Bad input detected before any work: one line for the user, exit code 2.

    `everywhere`: raised on every MPI rank alike (no rank is left waiting)."""

    def __init__(self, message: str, everywhere: bool = False):
        super().__init__(message)
        self.everywhere = everywhere


class RunError(RuntimeError):
    """A run that cannot go on; raised identically on every rank."""


class NumericalError(RunError):
    """Diverged or not finite; the last good state is checkpointed."""


class Interrupted(RunError):
    """A stop was requested (signal); the run is checkpointed and can be resumed."""
