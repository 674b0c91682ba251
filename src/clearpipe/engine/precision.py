"""Which number format the model runs in: `dtype="auto" | "float32" | "bfloat16" | "float16" | "int8"`.

"auto" takes bfloat16 where the hardware computes it natively — CPUs with AVX-512 BF16 or AMX,
CUDA GPUs of compute capability 8.0 and later — and float32 elsewhere, because emulated bf16 is
slower than fp32. "int8" quantizes the linear layers (int8 weights per channel, activations per
token; see `clearpipe.engine.int8`) and is never picked automatically: it trades a little accuracy for
speed, so users ask for it.
"""

from __future__ import annotations

import torch

from clearpipe.engine import cpu
from clearpipe.errors import InputError

DTYPES = ("auto", "float32", "bfloat16", "float16", "int8")
_TORCH = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def cpu_has_native_bf16() -> bool:
    """True when this CPU multiplies bf16 matrices in hardware (AVX-512 BF16 or AMX): see
    `clearpipe.engine.cpu.native_bf16`.

    >>> cpu_has_native_bf16()  # doctest: +SKIP
    True
    """
    return cpu.native_bf16()


def resolve_dtype(dtype: str, device: torch.device) -> str:
    """Turn the user's `dtype` into the concrete one for `device`: "auto" becomes bf16 or fp32.

    >>> resolve_dtype("auto", torch.device("cpu"))  # doctest: +SKIP
    'bfloat16'
    """
    if dtype not in DTYPES:
        raise InputError(f"dtype must be one of {', '.join(DTYPES)}; got {dtype!r}")
    if dtype == "int8" and device.type != "cpu":
        raise InputError("dtype int8 (dynamic quantization) runs on the CPU only; use --device cpu")
    if dtype != "auto":
        return dtype
    if device.type == "cuda":
        return "bfloat16" if torch.cuda.is_bf16_supported(including_emulation=False) else "float32"
    return "bfloat16" if device.type == "cpu" and cpu_has_native_bf16() else "float32"


def torch_dtype(dtype: str) -> torch.dtype:
    """The torch dtype in which weights are stored for a resolved `dtype` (int8 quantizes from fp32)."""
    return _TORCH.get(dtype, torch.float32)


def quantize_int8(model: torch.nn.Module) -> torch.nn.Module:
    """Quantize every `nn.Linear` of a float32 `model` to int8 for the CPU.

    With oneDNN's int8 kernels (x86 builds of PyTorch), weights get one scale per output channel
    and activations one per token, and the rest of the model runs in bf16 where the CPU computes
    it natively (`clearpipe.engine.int8`). Elsewhere it falls back to PyTorch's dynamic quantization
    (one activation scale per batch, float32 elsewhere), which agrees less often with float32.

    >>> model = quantize_int8(model)  # doctest: +SKIP
    """
    from clearpipe.engine import int8

    if int8.available():
        return int8.quantize_model(model, torch.bfloat16 if cpu_has_native_bf16() else torch.float32)
    import warnings

    from torch.ao.quantization import quantize_dynamic

    with warnings.catch_warnings():
        # torch deprecates torch.ao.quantization in favour of torchao, not yet a dependency here.
        warnings.simplefilter("ignore")
        return quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
