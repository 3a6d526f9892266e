"""Run `vmc` with a fault injected on rank 0 (for tests; the package itself has no test hooks).

    python tests/faults.py FAULT ITERATION vmc-arguments...

FAULT is
  write-error  every HDF5 write of the batch of optimization iterations holding ITERATION fails with ENOSPC
               (a full disk)
  raise        rank 0 raises RuntimeError("injected fault") when it writes the batch of iterations holding
               ITERATION (and writes the time of the fault to the file $VMC_FAULT_STAMP when that is set)
  pause-create after planning, just before the output file is created: write $VMC_FAULT_STAMP, then wait until
               the file $VMC_FAULT_GO exists (a deterministic race between two runs on one output)
  block-plan   during planning: write $VMC_FAULT_STAMP, then block in sleep (a run stuck before its first
               checkpoint, as on a named pipe); ITERATION is ignored by both
"""
import errno
import os
import sys
import time

import h5py

from vmc import cli
from vmc.output import io


def stamp() -> None:
    with open(os.environ["VMC_FAULT_STAMP"], "w") as f:
        f.write(repr(time.time()))


def pause_create():
    original = io.create_output

    def create_output(*args, **kwargs):
        stamp()
        while not os.path.exists(os.environ["VMC_FAULT_GO"]):
            time.sleep(0.02)
        return original(*args, **kwargs)
    io.create_output = create_output


def block_plan():
    original = io.claim_output

    def claim_output(*args, **kwargs):
        stamp()
        time.sleep(600)
        return original(*args, **kwargs)
    io.claim_output = claim_output


def main() -> int:
    fault, at, args = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    rank = int(os.environ.get("PMI_RANK", "0") or 0)
    if fault in ("pause-create", "block-plan"):
        (pause_create if fault == "pause-create" else block_plan)()
        return cli.main(args)
    original = io.RunWriter.iterations

    def iterations(self, first, rows, params):      # rank 0 writes iterations in batches
        if not first <= at < first + len(rows) or rank != 0:
            return original(self, first, rows, params)
        if fault == "raise":
            if os.environ.get("VMC_FAULT_STAMP"):     # when the fault happened, for the test's clock
                with open(os.environ["VMC_FAULT_STAMP"], "w") as stamp:
                    stamp.write(repr(time.time()))
            raise RuntimeError("injected fault")
        real = h5py.Dataset.__setitem__, io._Rows.write

        def full(ds, key, value):
            raise OSError(errno.ENOSPC, "Can't write data (file write failed: errno = 28, error message = "
                                        "'No space left on device')")
        h5py.Dataset.__setitem__ = io._Rows.write = full
        try:
            return original(self, first, rows, params)
        finally:
            h5py.Dataset.__setitem__, io._Rows.write = real

    io.RunWriter.iterations = iterations
    return cli.main(args)


if __name__ == "__main__":
    sys.exit(main())
