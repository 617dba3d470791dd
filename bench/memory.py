"""Running out of memory as a one-line error that names the step and the memory it needed.

A 55M-row log on a 16 GB laptop must not end in a pandas traceback: every memory-heavy step of preparing a
split runs inside :func:`step`, which turns a ``MemoryError`` (numpy's says how much it could not allocate)
into a :class:`~bench.errors.BenchError` saying what was being done, what it needed and what there was.
"""

from __future__ import annotations

import resource
from collections.abc import Iterator
from contextlib import contextmanager

from bench.errors import BenchError


def _gb(n_bytes: float) -> str:
    return f"{n_bytes / 1e9:.1f} GB"


def available_bytes() -> int | None:
    """Memory this process may still take: the smaller of the machine's available memory and the room left
    under an address-space limit (``ulimit -v``); None where neither can be read."""
    room = []
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    room.append(int(line.split()[1]) * 1024)
    except OSError:
        pass
    limit = resource.getrlimit(resource.RLIMIT_AS)[0]
    if limit != resource.RLIM_INFINITY:
        try:
            with open("/proc/self/statm") as fh:
                size = int(fh.read().split()[0]) * resource.getpagesize()
            room.append(max(0, limit - size))
        except OSError:
            pass
    return min(room) if room else None


def out_of_memory(doing: str, err: BaseException) -> str:
    """The message for a ``MemoryError`` raised while ``doing``."""
    size = getattr(err, "_total_size", None)  # numpy's _ArrayMemoryError carries the request's size
    needed = f"it needed {_gb(size)} more" if isinstance(size, int) else "it needed more memory"
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB
    free = available_bytes()
    there = f"{_gb(free)} still available" if free is not None else "the machine's memory is used up"
    return (f"out of memory while {doing}: {needed} ({_gb(peak)} in use at the peak, {there}); "
            "a profile that caps users (--profile cpu) or a machine with more memory gets through")  # fmt: skip


@contextmanager
def step(doing: str) -> Iterator[None]:
    """Run a block; a ``MemoryError`` inside it becomes a one-line :class:`BenchError` naming ``doing``."""
    try:
        yield
    except MemoryError as err:
        raise BenchError(out_of_memory(doing, err)) from None
