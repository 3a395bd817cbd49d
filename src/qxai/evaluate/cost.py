"""Cost: wall time and peak memory of a call.

Peak memory is the growth of the process's resident set (``/proc/self/statm``), sampled every 2 ms
by a background thread, above its level at the start of the call. Unlike ``tracemalloc`` it sees
torch's allocations too. Freed heap memory is handed back to the OS first (``malloc_trim``) so that
a method measured after another starts from a comparable baseline.

>>> with PeakMemory() as peak:
...     block = bytearray(64 * 2**20)
>>> peak.peak_mb >= 0.0
True
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import os
import threading
import time
from types import TracebackType


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):  # not Linux: fall back to the (non-resettable) maximum
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _trim() -> None:
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to trim
        ctypes.CDLL("libc.so.6").malloc_trim(0)


class PeakMemory:
    """Context manager: ``peak_mb`` is the peak RSS growth (MiB) and ``seconds`` the wall time inside."""

    def __init__(self, interval: float = 0.002) -> None:
        self.interval = interval
        self.peak_mb = 0.0
        self.seconds = 0.0
        self._stop = threading.Event()
        self._base = 0
        self._peak = 0

    def _poll(self) -> None:
        while not self._stop.is_set():
            self._peak = max(self._peak, _rss_bytes())
            time.sleep(self.interval)

    def __enter__(self) -> PeakMemory:
        _trim()
        self._base = self._peak = _rss_bytes()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        self._start = time.perf_counter()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.seconds = time.perf_counter() - self._start
        self._peak = max(self._peak, _rss_bytes())
        self._stop.set()
        self._thread.join()
        self.peak_mb = max(0, self._peak - self._base) / 2**20
