"""MPI parallelism over walkers.

Every rank advances its own share of the walkers; per iteration the ranks add their vectors of
sufficient statistics with one allreduce, so all ranks compute the same gradient and apply the same
update, and the parameters stay bit-identical. Without mpi4py (or without mpiexec) the run is a
single rank.

Walker w of W in total always draws from its own stream (`vmc.mc.streams`: keyed by the root seed and w),
whatever the number of ranks; rank r drives walkers [r W // K, (r + 1) W // K). K need not divide W.

DMC (`vmc.mc.dmc.Population`) reduces exact integer accumulators (`vmc.mc.exactsum`) with their exclusive scan
(`Comm.sum_and_exscan`) and moves copies of walkers between neighbouring ranks with point-to-point
messages (`send`, `receive_any`); nothing per step is O(walkers) on a rank but its own walkers.
"""
from __future__ import annotations

import os
import sys
import zlib

import numpy as np

# The usual variables by which a user sets the threads of the BLAS and OpenMP pools (hybrid MPI x threads).
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS")


def one_thread_per_rank() -> int:
    """Limit the BLAS and OpenMP thread pools of this process to one thread, unless the user set one of
    `THREAD_VARIABLES`; returns the largest pool size then in force.

    One rank per core is how MPI jobs are started; left alone, OpenBLAS starts a pool of threads per rank
    that spin after each small matrix operation, so one rank keeps every core busy and two ranks halve
    each other's speed (measured: 2-rank efficiency 0.45 without the limit, 0.95 with it). The kernels
    themselves are single-threaded numba code.
    """
    from threadpoolctl import threadpool_info, threadpool_limits

    if not any(os.environ.get(v) for v in THREAD_VARIABLES):
        threadpool_limits(limits=1)
    return max((pool["num_threads"] for pool in threadpool_info()), default=1)


# Environment variables by which common launchers announce the world size.
_SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MPI_LOCALNRANKS", "SLURM_NTASKS")


SCAN_IN_ALLREDUCE = 8    # `Comm.sum_and_exscan`: up to this many ranks the exscan travels in the allreduce


class ParallelError(RuntimeError):
    pass


class Comm:
    """The world communicator, or a stand-in for a single process without MPI."""

    def __init__(self, mpi_comm=None):
        self._comm = mpi_comm
        self.rank = mpi_comm.Get_rank() if mpi_comm is not None else 0
        self.size = mpi_comm.Get_size() if mpi_comm is not None else 1

    @property
    def is_root(self) -> bool:
        return self.rank == 0

    def allreduce_sum(self, local: np.ndarray) -> np.ndarray:
        return self._allreduce(local, "SUM")

    def allreduce_max(self, local: np.ndarray) -> np.ndarray:
        return self._allreduce(local, "MAX")

    def _allreduce(self, local: np.ndarray, op: str) -> np.ndarray:
        if self._comm is None or self.size == 1:      # the same bits as MPI's reduction of one rank, without its wait
            return local.copy()
        from mpi4py import MPI
        local = np.ascontiguousarray(local)
        out = np.empty_like(local)
        self._comm.Allreduce(local, out, op=getattr(MPI, op))
        return out

    def sum_and_exscan(self, total: np.ndarray, scan: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(the sum over all ranks of `total`, the sum over the ranks below this one of `scan`; zeros on
        rank 0), integer arrays, in one collective on up to `SCAN_IN_ALLREDUCE` ranks: every rank adds its
        `scan` into the slots of the ranks above it, so one allreduce of K more copies of `scan` carries the
        exclusive scan (one latency, one wait); beyond, an allreduce and an exscan in flight at once."""
        if self._comm is None or self.size == 1:
            return total.copy(), np.zeros_like(scan)
        from mpi4py import MPI
        total, scan = np.ascontiguousarray(total), np.ascontiguousarray(scan)
        if self.size <= SCAN_IN_ALLREDUCE:
            k = scan.size
            buf = np.zeros(total.size + self.size * k, dtype=total.dtype)
            buf[:total.size] = total.ravel()
            buf[total.size + (self.rank + 1) * k:] = np.tile(scan.ravel(), self.size - self.rank - 1)
            out = np.empty_like(buf)
            self._comm.Allreduce(buf, out, op=MPI.SUM)
            mine = out[total.size + self.rank * k:total.size + (self.rank + 1) * k]
            return out[:total.size].reshape(total.shape), mine.reshape(scan.shape)
        summed, below = np.empty_like(total), np.zeros_like(scan)
        MPI.Request.Waitall([self._comm.Iallreduce(total, summed, op=MPI.SUM),
                             self._comm.Iexscan(scan, below, op=MPI.SUM)])
        if self.rank == 0:
            below[...] = 0      # MPI leaves rank 0's exclusive scan undefined
        return summed, below

    def send(self, message: np.ndarray, dest: int, tag: int):
        """Start sending a float64 array to rank `dest` (nonblocking; `wait` for the returned request)."""
        return self._comm.Isend(np.ascontiguousarray(message, dtype=np.float64), dest=dest, tag=tag)

    def receive_any(self, tag: int) -> np.ndarray:
        """The next float64 array sent to this rank with `tag`, from whichever rank sent one."""
        from mpi4py import MPI
        status = MPI.Status()
        self._comm.Probe(source=MPI.ANY_SOURCE, tag=tag, status=status)
        out = np.empty(status.Get_count(MPI.DOUBLE))
        self._comm.Recv(out, source=status.Get_source(), tag=tag)
        return out

    @staticmethod
    def wait(requests: list) -> None:
        if requests:
            from mpi4py import MPI
            MPI.Request.Waitall(requests)

    def gather(self, obj):
        """A list of every rank's object on rank 0 (rank order), None elsewhere."""
        return [obj] if self._comm is None else self._comm.gather(obj, root=0)

    def bcast(self, obj):
        return obj if self._comm is None else self._comm.bcast(obj, root=0)

    def ranks_on_node(self) -> int:
        """How many ranks of this job share this rank's node (collective)."""
        if self._comm is None:
            return 1
        from mpi4py import MPI
        local = self._comm.Split_type(MPI.COMM_TYPE_SHARED)
        n = local.Get_size()
        local.Free()
        return n

    def abort(self, code: int) -> None:
        """End every rank of the job now with exit code `code` (MPI_Abort), so that no rank waits for this
        one in a collective. MPICH's own report is silenced: the caller has printed the reason."""
        if self._comm is None or self.size == 1:
            return
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(os.open(os.devnull, os.O_WRONLY), 2)
        self._comm.Abort(code)

    def all_equal(self, array: np.ndarray) -> bool:
        """True when every rank holds a bit-identical array (compares a checksum)."""
        if self._comm is None:
            return True
        digest = zlib.crc32(np.ascontiguousarray(array).tobytes())
        return len(set(self._comm.allgather(digest))) == 1


def world() -> Comm:
    """COMM_WORLD when mpi4py is importable, else a single rank (an error if a launcher asked for more)."""
    try:
        from mpi4py import MPI
    except ImportError as exc:
        for var in _SIZE_VARIABLES:
            if int(os.environ.get(var, "1") or 1) > 1:
                raise ParallelError(f"{var}={os.environ[var]} asks for several MPI ranks, but mpi4py "
                                    f"cannot be imported ({exc}); install it (pip install mpi4py mpich)")
        return Comm(None)
    return Comm(MPI.COMM_WORLD)


def walker_range(n_walkers: int, rank: int, size: int) -> range:
    """Global indices of the walkers driven by `rank` of `size`.

    >>> [list(walker_range(5, r, 2)) for r in range(2)]
    [[0, 1], [2, 3, 4]]
    """
    return range(rank * n_walkers // size, (rank + 1) * n_walkers // size)
