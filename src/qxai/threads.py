"""How many threads a parallel kernel may use: the one rule every compiled kernel of qxai follows.

The rule (docs/annealing.md, "Threads"):

1. **Parallel only where it pays for a late thread.** A fork-join region waits for its slowest
   thread; when another process holds a core, one of ours is descheduled for a scheduler time slice
   (milliseconds). A region gets more than one thread only when its work, counted in the caller's
   unit (amplitude updates, flips, …), is at least ``min_work`` per thread — a size the caller
   states from a measurement, such that one slice of delay costs a few per cent of the region.
2. **Only cores that are actually free.** The count is the cores this process may run on
   (``os.sched_getaffinity``) minus the cores other processes keep busy — the larger of the tasks
   of other processes running right now (``/proc/loadavg``'s instantaneous count, less our own
   running threads) and the one-minute load average less our own threads — at least one. It is
   re-read at most every :data:`REFRESH_SECONDS`, so a long run follows the machine's load.
3. **One pool at a time.** While numba's kernels run (:func:`numba_threads`), BLAS is limited to
   one thread (threadpoolctl), and while BLAS gets a pool (:func:`blas_threads`), numba gets one
   thread: two spinning pools on the same cores starve each other (the minimum-gap search at
   d = 16 took 16 s with both pools on an idle machine, 2.8 s with one).

Results never depend on the thread count: every parallel kernel of qxai is written so (no
parallel reductions, or reductions in a fixed chunk order).

>>> available_cores() >= 1
True
>>> threads_for(work=10, min_work=1000)  # too little work for a second thread
1
>>> with numba_threads(1):
...     int(numba.get_num_threads())
1
"""

from __future__ import annotations

import contextlib
import glob
import os
import sys
import time
from collections.abc import Iterator

import numba

#: Seconds between two readings of the machine's load (reading costs ~0.1 ms).
REFRESH_SECONDS = 0.25

_cache = {"at": -1e9, "free": 1, "granted": 1}
_controller = None
_modules_seen = 0


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


def _own_running_threads() -> int:
    """Threads of this process in state R (running or runnable) now."""
    count = 0
    for path in glob.glob("/proc/self/task/*/stat"):
        try:
            with open(path) as f:
                # the state follows the parenthesised command name, which may contain spaces
                count += f.read().rsplit(")", 1)[1].split()[0] == "R"
        except (OSError, IndexError):
            continue
    return count


def running_elsewhere() -> int:
    """Running tasks of other processes on the machine right now (0 where Linux's /proc is absent)."""
    try:
        with open("/proc/loadavg") as f:
            running = int(f.read().split()[3].split("/")[0])
    except (OSError, IndexError, ValueError):
        return 0
    return max(0, running - max(1, _own_running_threads()))


def busy_elsewhere() -> int:
    """Cores other processes keep busy: the larger of :func:`running_elsewhere` (now) and the
    one-minute load average less the threads this process was last granted (bursty jobs that
    happen to sleep at the instant of reading still count)."""
    try:
        recent = os.getloadavg()[0] - _cache["granted"]
    except OSError:
        recent = 0.0
    return max(running_elsewhere(), round(recent))


def free_cores() -> int:
    """:func:`available_cores` minus :func:`busy_elsewhere`, at least 1; re-read at most every
    :data:`REFRESH_SECONDS`."""
    now = time.monotonic()
    if now - _cache["at"] > REFRESH_SECONDS:
        _cache["free"] = max(1, available_cores() - busy_elsewhere())
        _cache["at"] = now
    return int(_cache["free"])


def threads_for(work: float, min_work: float) -> int:
    """Threads for one parallel region of ``work`` units, given that a thread needs at least
    ``min_work`` units to absorb a late start: 1 below it, else at most ``work // min_work``,
    :func:`free_cores` and numba's pool size."""
    if work < 2 * min_work:
        return 1
    return max(1, min(int(work // min_work), free_cores(), numba.config.NUMBA_NUM_THREADS))


def _blas_controller():  # threadpoolctl's controller, imported lazily
    global _controller, _modules_seen
    # a library imported after the last scan (scipy's or torch's own BLAS, say) would keep its full
    # pool: scan again (~ms) whenever the set of imported modules has grown since
    if _controller is None or len(sys.modules) != _modules_seen:
        from threadpoolctl import ThreadpoolController

        _controller = ThreadpoolController()
        _modules_seen = len(sys.modules)
    return _controller


@contextlib.contextmanager
def numba_threads(n: int) -> Iterator[int]:
    """Run numba's parallel kernels with ``n`` threads inside the block (the caller's thread only);
    BLAS gets one thread meanwhile. Restores both on exit. Yields ``n``.

    BLAS is limited even when ``n = 1``: the BLAS calls between numba kernels are skinny block
    products that a second BLAS thread does not speed up, and on a loaded machine OpenBLAS's pool
    alone made the gap search at d = 16 take 634 s instead of 34 s (BENCHMARKS.md, P3-load).
    """
    n = max(1, min(int(n), numba.config.NUMBA_NUM_THREADS))
    before = numba.get_num_threads()
    numba.set_num_threads(n)
    _cache["granted"] = n
    try:
        with _blas_controller().limit(limits=1, user_api="blas"):
            yield n
    finally:
        numba.set_num_threads(before)


@contextlib.contextmanager
def blas_threads(n: int) -> Iterator[int]:
    """Limit BLAS to ``n`` threads inside the block; numba's kernels get one thread meanwhile when
    ``n > 1`` (the mirror of :func:`numba_threads`). Yields ``n``."""
    n = max(1, int(n))
    with (
        _blas_controller().limit(limits=n, user_api="blas"),
        numba_threads(1 if n > 1 else numba.get_num_threads()),
    ):
        yield n


__all__ = [
    "REFRESH_SECONDS",
    "available_cores",
    "blas_threads",
    "busy_elsewhere",
    "free_cores",
    "numba_threads",
    "running_elsewhere",
    "threads_for",
]
