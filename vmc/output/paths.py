"""Which paths vmc opens: regular files only, checked before anything opens them.

Opening a named pipe blocks until another process opens its other end, and a device or a socket is no
input file or HDF5 file either; so every path a user names (the input, the output, `--resume`,
`wavefunction.from_file`, the files of `vmc info`, `analyze` and `report`) is looked at with stat(2) first,
which never blocks, and refused with one line when it is not a regular file. There is no exception: a
TOML input on a pipe is saved to a file first. Symbolic links count as what they point to.

    >>> special_kind("/dev/null")
    'a character device'
"""
from __future__ import annotations

import os
import stat

_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISSOCK, "a socket"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


def special_kind(path: str | os.PathLike) -> str | None:
    """What `path` is when it exists and is not a regular file ("a named pipe (FIFO)", ...); None for a regular
    file and for a path that does not exist (yet)."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return None
    if stat.S_ISREG(mode):
        return None
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def not_regular(path: str | os.PathLike, role: str) -> str | None:
    """The one-line reason to refuse `path` as `role` ("input file", "output file", ...), or None."""
    kind = special_kind(path)
    if kind is None:
        return None
    return f"{os.fspath(path)}: is {kind}, not a regular file: vmc reads and writes its {role} as a regular file only"
