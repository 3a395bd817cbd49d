"""What this machine has: its memory (the one place qxai reads it, for every up-front refusal).

>>> total, available = machine_memory_bytes()
>>> 0 < available <= total
True
"""

from __future__ import annotations

import os


def machine_memory_bytes() -> tuple[float, float]:
    """``(total, available)`` bytes of this machine's memory: physical pages, and ``MemAvailable``
    of ``/proc/meminfo`` where the kernel has it (else the total).

    >>> total, available = machine_memory_bytes()
    >>> 0 < available <= total
    True
    """
    total = float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    available = total
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    available = min(total, float(line.split()[1]) * 1024)
                    break
    except OSError:  # not Linux: the total is the best we know
        pass
    return total, available


__all__ = ["machine_memory_bytes"]
