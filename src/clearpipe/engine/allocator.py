"""The C allocator under PyTorch's CPU tensors: keep freed activation memory for the next batch.

Every batch allocates activations of a few MB (tokens x 1536 for a MiniLM feed-forward layer) and
frees them a moment later. glibc's malloc serves blocks that size with `mmap` and hands them back
to the kernel on `free`, or trims them off the heap top, so the next batch touches fresh pages and
pays a page fault per 4 KiB. Measured on the 2-core AVX-512 machine with the embedded MiniLM:
a 384 -> 1536 bf16 linear layer followed by GELU took 6.7 ms per call that way and 3.8 ms with
freed memory kept; `predict` on SST-2 went from about 780 to 870 texts/s in bf16 and from 790 to
1,100 texts/s in int8 (`benchmarks/throughput.py` shows the figures of the day).

`keep_freed_memory` raises glibc's mmap and trim thresholds, as jemalloc or tcmalloc preloaded
would (Intel's PyTorch tuning guide recommends either). Peak memory is unchanged; what changes is
that the process keeps its peak instead of returning it between batches.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import sys

# mallopt parameters, from glibc's <malloc.h>.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_THRESHOLD = 1 << 30  # 1 GiB: well above any one activation tensor of a classifier batch
# Settings by which a user already chose how malloc behaves; clearpipe then leaves it alone.
_USER_CHOICES = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES", "LD_PRELOAD")
OPT_OUT = "CLEARPIPE_KEEP_FREED_MEMORY"
"""Set to 0 to leave the process's malloc settings as they are."""


@functools.cache
def keep_freed_memory() -> bool:
    """Make glibc keep freed blocks for reuse; True when the settings were applied.

    Runs once per process. Does nothing (and returns False) off Linux, on a C library other
    than glibc, when `CLEARPIPE_KEEP_FREED_MEMORY=0`, or when the user already tuned malloc
    through its environment variables or preloaded another allocator.

    >>> keep_freed_memory()  # doctest: +SKIP
    True
    """
    if not sys.platform.startswith("linux") or os.environ.get(OPT_OUT, "1") == "0":
        return False
    if any(os.environ.get(name) for name in _USER_CHOICES):
        return False
    libc = _glibc()
    if libc is None:
        return False
    # Order matters: a fixed trim threshold alone turns off glibc's adaptive mmap threshold and
    # sends every block over 128 KiB to mmap, which measured 2x slower than doing nothing.
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, _THRESHOLD)) and bool(
        libc.mallopt(_M_TRIM_THRESHOLD, _THRESHOLD)
    )


def _glibc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    # Only glibc has gnu_get_libc_version; musl's mallopt ignores these parameters.
    return libc if hasattr(libc, "gnu_get_libc_version") else None
