"""Resident memory of this process, for the benchmarks that report peak memory.

Linux gives a process's own peak (``VmHWM``) and lets it be reset to the current size
(``/proc/self/clear_refs``), so a call's peak can be measured on its own; elsewhere
``ru_maxrss`` is the fallback.
"""

from __future__ import annotations

import resource
import sys


def status_kib(field):
    """A ``/proc/self/status`` field in KiB (Linux), else None."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def peak_kib():
    """Peak RSS of this process in KiB: ``VmHWM`` on Linux, else ``ru_maxrss``.

    ``ru_maxrss`` also counts the peak of the process that forked this one (a parent
    with torch imported is hundreds of MiB), and a reset of the high-water mark does not
    lower it; ``VmHWM`` is this process's own.
    """
    peak = status_kib("VmHWM")
    if peak is not None:
        return peak
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak  # bytes on macOS


def reset_peak():
    """Reset the peak RSS to the current RSS (Linux >= 4.0); False where not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False
