"""keep_freed_memory: glibc keeps a batch's freed activations, so the next batch does not fault.

Each case runs in a fresh interpreter, because malloc settings are process-wide and applied once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")

# One block freed and asked for again, as a batch's activations are. The block is larger than the
# largest threshold glibc's own adaptive rule ever reaches (32 MiB on 64-bit), so left alone glibc
# always maps it afresh and the second touch faults its pages again, on any CPU and under any load;
# kept, the second block is the first one's memory and its pages are still mapped.
REUSE = """
import ctypes, json, resource
from clearpipe.engine import allocator
applied = allocator.keep_freed_memory()
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
size = 64 << 20

def touched_block():
    start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    block = libc.malloc(size)
    ctypes.memset(block, 1, size)
    libc.free(block)
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - start

first, second = touched_block(), touched_block()
print(json.dumps({"applied": applied, "first": first, "second": second}))
"""


def probe(code: str, **env: str) -> dict:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "GLIBC_TUNABLES"))}
    clean.pop("LD_PRELOAD", None)
    out = subprocess.run(
        [sys.executable, "-c", code], env=clean | env, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_freed_block_is_reused_without_new_page_faults():
    kept = probe(REUSE)
    returned = probe(REUSE, CLEARPIPE_KEEP_FREED_MEMORY="0")
    assert kept["applied"] and not returned["applied"]
    pages = (64 << 20) // os.sysconf("SC_PAGE_SIZE")
    # Both first touches fault the block in (in 4 KiB pages, or 2 MiB ones where the kernel
    # backs the block with transparent huge pages: at least 32 faults either way).
    assert kept["first"] >= 32 and returned["first"] >= 32, (kept, returned)
    # Kept: the same memory again, its pages still there (a few faults of the interpreter's own).
    assert kept["second"] < pages // 100, (kept, returned)
    # Returned to the kernel: every page is new again.
    assert returned["second"] >= 32, (kept, returned)


def test_a_user_choice_of_malloc_settings_is_left_alone():
    assert not probe(REUSE, MALLOC_TRIM_THRESHOLD_="131072")["applied"]
