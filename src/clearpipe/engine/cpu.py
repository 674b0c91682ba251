"""What this CPU's instruction set lets the engine's kernels do, read once from its flags.

x86-64 CPUs differ in exactly the features the fast paths lean on: AMD Zen 4 and Intel Xeons
with AMX compute bf16 and int8 dot products in hardware; an AMD Zen 3 (AVX2, no AVX-512) does
neither, and oneDNN then refuses some layouts or takes kernels with other arithmetic. Each
predicate here names one such feature, so that `precision`, `prepacked` and `int8` ask the same
source and a test can pretend to be another CPU by replacing `flags`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import torch

_BF16_MATH = frozenset({"avx512_bf16", "amx_bf16"})
"""Flags that mean bf16 matrix multiplies run in hardware."""
_AVX512 = frozenset({"avx512f", "avx512bw", "avx512vl", "avx512dq"})
"""The AVX-512 subsets oneDNN's AVX-512 kernels (and its bf16 weight reorder) ask of the CPU."""
_INT8_DOT = frozenset({"avx512_vnni", "avx_vnni", "amx_int8"})
"""Flags of the u8 x s8 dot-product instructions that sum into int32 (VNNI, AMX)."""


@functools.cache
def flags() -> frozenset[str] | None:
    """The CPU's feature flags as the Linux kernel lists them in /proc/cpuinfo (`avx512_bf16`,
    `amx_bf16`, ...), or None where there is no such file (macOS, Windows).

    >>> "avx2" in (flags() or ())  # doctest: +SKIP
    True
    """
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("flags"):
                return frozenset(line.split(":", 1)[1].split())
    return None


def native_bf16() -> bool:
    """True when this CPU multiplies bf16 matrices in hardware (AVX-512 BF16 or AMX). Without
    /proc/cpuinfo, asks torch which instruction set its kernels were dispatched to.

    >>> native_bf16()  # doctest: +SKIP
    True
    """
    return _has(lambda found: bool(_BF16_MATH & found), ("AVX512_BF16", "AMX"))


def avx512() -> bool:
    """True when the CPU has the AVX-512 subsets oneDNN's AVX-512 kernels need (F, BW, VL, DQ).

    >>> avx512()  # doctest: +SKIP
    True
    """
    return _has(lambda found: found >= _AVX512, ("AVX512", "AMX"))


def packs_bf16() -> bool:
    """True when oneDNN can lay out bf16 weights for its kernels here (AVX-512 BW/VL/DQ or
    AVX-NE-CONVERT); elsewhere `torch.ops.mkldnn._reorder_linear_weight` raises "bf16 path needs
    the cpu support ...".

    >>> packs_bf16()  # doctest: +SKIP
    True
    """
    found = flags()
    return avx512() or (found is not None and "avx_ne_convert" in found)


def int8_dot_products() -> bool:
    """True when u8 x s8 products sum straight into int32 (AVX-512 VNNI, AVX-VNNI or AMX).

    Without them (AVX2 alone, or AVX-512 before VNNI) oneDNN multiplies with `vpmaddubsw`, which
    adds each pair of u8 x s8 products into a saturating int16: 255 x 127 x 2 overflows it, and on
    a Zen 3 a full-range int8 layer was 33% off its float32 output. Unknown CPUs count as lacking
    them. `clearpipe.engine.int8` keeps its weights within 64 levels there, so no pair overflows.

    >>> int8_dot_products()  # doctest: +SKIP
    True
    """
    return _has(lambda found: bool(_INT8_DOT & found), ("VNNI", "AMX", "AVX512_BF16"))


def _has(wanted: Callable[[frozenset[str]], bool], dispatched: tuple[str, ...]) -> bool:
    """`wanted(flags())` where the kernel lists the CPU's flags; elsewhere (macOS, Windows)
    whether the instruction set torch dispatched to names any of `dispatched`."""
    found = flags()
    if found is not None:
        return wanted(found)
    capability = torch.backends.cpu.get_cpu_capability()
    return any(name in capability for name in dispatched)
