"""int8 linear layers with per-token activation scales (W8A8), for `dtype="int8"` on the CPU.

PyTorch's dynamic quantization scales a whole batch of activations by its single largest value,
and the rest of the model stays in float32. On the embedded model that lost 3% of SST-2 labels
and 9% of AG News labels against float32. Here every token (row) gets its own scale and every
output channel of the weight its own, as in SmoothQuant and torchao's int8 dynamic mode, and the
layers between the linears (embeddings, LayerNorm, attention, GELU) run in bf16 where the CPU has
it. The products run in oneDNN's u8 x s8 kernels (AVX-512 VNNI / AMX; on older CPUs with
weights of 7 bits, `weight_levels`); quantizing the rows and
rescaling the outputs are small fused kernels from `torch.compile` for batches of 256 tokens or
more (plain PyTorch for smaller ones, and wherever no compiler is available).

    >>> model = quantize_model(model)  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Callable, Iterator
from typing import TypeVar

import torch

from clearpipe.engine import cpu, linears

log = logging.getLogger(__name__)
T = TypeVar("T")

# Activations are shifted by 128 into uint8: oneDNN's fast int8 kernels take unsigned activations
# and signed weights (u8 x s8), and signed activations fall back to a reference kernel.
_SHIFT = 128


def available() -> bool:
    """True when this PyTorch build has oneDNN's int8 linear kernels (x86 CPU builds do).

    >>> available()  # doctest: +SKIP
    True
    """
    ops = torch.ops.onednn
    return torch.backends.mkldnn.is_available() and all(
        hasattr(ops, name) for name in ("qlinear_prepack", "qlinear_pointwise")
    )


def weight_levels() -> int:
    """The largest |int8 weight|: 127 where the CPU sums u8 x s8 products into int32 (VNNI, AMX),
    64 elsewhere, where oneDNN's pairwise int16 sums would saturate (255 x 64 x 2 = 32,640 fits
    in an int16; 255 x 127 x 2 does not; see `cpu.int8_dot_products`). Half the weight levels
    doubles their rounding error: a random 64 x 48 layer came within 1.4% of float32 on a Zen 3,
    against 33% saturated.

    >>> weight_levels() in (64, 127)
    True
    """
    return 127 if cpu.int8_dot_products() else 64


def quantize_rows(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Quantize each row of `x` (tokens, features) symmetrically to int8, stored shifted as uint8.

    Returns the uint8 rows and one float32 scale per row: x ~ (q - 128) * scale.

    >>> q, scale = quantize_rows(torch.tensor([[1.0, -0.5]]))
    >>> q.tolist(), round(scale.item(), 5)
    ([[255, 64]], 0.00787)
    """
    x = x.float()
    scale = x.abs().amax(dim=-1, keepdim=True).clamp(min=1e-8) / 127
    # No clamp to [1, 255]: no |x| exceeds its row's largest, so |x / scale| rounds to 127 at
    # most. The clamp was a fifth of the compiled kernel's time, and never changed a value.
    return (torch.round(x / scale) + _SHIFT).to(torch.uint8), scale


def product(
    q: torch.Tensor, packed: torch.Tensor, weight_scale: torch.Tensor, dtype: torch.dtype
) -> torch.Tensor:
    """oneDNN's u8 x s8 product of shifted rows `q` and a `qlinear_prepack`ed weight, in `dtype`.

    The output is already times the per-channel `weight_scale`; `rescale` applies the row scales.

    >>> y = product(q, torch.ops.onednn.qlinear_prepack(w, None), w_scale, torch.bfloat16)  # doctest: +SKIP
    """
    return torch.ops.onednn.qlinear_pointwise(
        q, 1.0, _SHIFT, packed, weight_scale, None, None, 1.0, 0, dtype, "none", [], ""
    )


def rescale(
    y: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor | None, dtype: torch.dtype
) -> torch.Tensor:
    """Turn int8 products (already times the weight scales) into outputs: y * row scale + bias.

    >>> rescale(torch.tensor([[2.0]]), torch.tensor([[0.5]]), torch.tensor([1.0]), torch.float32)
    tensor([[2.]])
    """
    out = y * scale
    if bias is not None:
        out = out + bias
    return out.to(dtype)


@functools.cache
def _kernels() -> dict[Callable[..., object], Callable[..., object]]:
    """`quantize_rows` and `rescale` compiled into one fused loop each, keyed by the plain ones.

    Compiling happens at the first call of each; `_call` catches its failure.
    """
    return {fn: torch.compile(fn, dynamic=True) for fn in (quantize_rows, rescale)}


_compiled_ok: bool | None = None
_plain_only = 0  # depth of `plain_kernels` blocks
# Below this many tokens in a batch the plain kernels cost well under a millisecond, so a few
# short texts (one CLI call) never wait the seconds that compiling takes.
COMPILE_FROM_TOKENS = 256


def _call(plain: Callable[..., T], tokens: int, *args: object) -> T:
    """Run `plain` compiled; fall back to plain PyTorch for good if compiling fails."""
    global _compiled_ok
    if _compiled_ok is not False and tokens >= COMPILE_FROM_TOKENS and not _plain_only:
        try:
            result = _kernels()[plain](*args)
            _compiled_ok = True
            return result
        except Exception as exc:  # no C++ compiler, or an inductor bug: correctness first
            if _compiled_ok:
                raise
            log.warning("int8: torch.compile is unavailable (%s); using slower uncompiled kernels", exc)
            _compiled_ok = False
    return plain(*args)


@contextlib.contextmanager
def plain_kernels() -> Iterator[None]:
    """Use the uncompiled kernels inside this block, whatever the batch size.

    For one-off work at load time (calibrating `clearpipe.engine.recheck`'s margin takes 0.6 s this way
    on the embedded model, and would first wait 2-16 s for the compiler). Process-wide: other
    threads' batches run uncompiled meanwhile, which is slower, never different in kind.

    >>> with plain_kernels():  # doctest: +SKIP
    ...     clf.logits(sample)
    """
    global _plain_only
    _plain_only += 1
    try:
        yield
    finally:
        _plain_only -= 1


class Int8Linear(linears.KernelLinear):
    """A drop-in `nn.Linear` with int8 weights (one scale per output channel) and int8 tokens.

    >>> layer = Int8Linear(torch.nn.Linear(384, 1536), torch.bfloat16)  # doctest: +SKIP
    >>> layer(torch.randn(7, 384, dtype=torch.bfloat16)).shape  # doctest: +SKIP
    torch.Size([7, 1536])
    """

    def __init__(self, linear: torch.nn.Linear, dtype: torch.dtype) -> None:
        super().__init__()
        weight = linear.weight.detach().float()
        levels = weight_levels()
        scale = weight.abs().amax(dim=1).clamp(min=1e-8) / levels  # (out_features,)
        quantized = torch.round(weight / scale[:, None]).clamp(-levels, levels).to(torch.int8)
        self.in_features = linear.in_features
        self.out_features = linear.out_features
        self.dtype = dtype
        # Plain attributes, not buffers: `model.to(dtype)` must not cast them.
        self.quantized = quantized  # (out, in) int8, kept for `to_float`
        self.packed = torch.ops.onednn.qlinear_prepack(quantized, None)
        self.weight_scale = scale
        self.bias_ = None if linear.bias is None else linear.bias.detach().to(dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.reshape(-1, self.in_features)
        tokens = rows.shape[0]
        q, scale = _call(quantize_rows, tokens, rows)
        y = product(q, self.packed, self.weight_scale, self.dtype)
        out = _call(rescale, tokens, y, scale, self.bias_, self.dtype)
        return out.reshape(*x.shape[:-1], self.out_features)

    def __deepcopy__(self, memo: dict) -> Int8Linear:
        # oneDNN's packed weight is an opaque tensor that cannot be copied; it is never written
        # to, so copies share it.
        clone = Int8Linear.__new__(Int8Linear)
        torch.nn.Module.__init__(clone)
        clone.__dict__.update({k: v for k, v in self.__dict__.items() if not k.startswith("_")})
        return clone

    def to_float(self) -> torch.nn.Linear:
        """The float32 `nn.Linear` this layer computes: its int8 weights times their scales.

        >>> Int8Linear(torch.nn.Linear(4, 2), torch.float32).to_float().weight.dtype
        torch.float32
        """
        linear = torch.nn.Linear(self.in_features, self.out_features, bias=self.bias_ is not None)
        with torch.no_grad():
            linear.weight.copy_(self.quantized.float() * self.weight_scale[:, None])
            if self.bias_ is not None:
                linear.bias.copy_(self.bias_.float())
        return linear

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, int8 x int8 -> {self.dtype}"
        )


def quantize_model(model: torch.nn.Module, dtype: torch.dtype) -> torch.nn.Module:
    """Replace every `nn.Linear` of a float32 `model` by `Int8Linear`; run the rest in `dtype`.

    Weights are quantized from their float32 values, then the remaining parameters (embeddings,
    LayerNorm) are cast to `dtype` (bfloat16 on CPUs that compute it, else float32).

    >>> model = quantize_model(AutoModelForSequenceClassification.from_pretrained(path), torch.bfloat16)  # doctest: +SKIP
    """
    linears.replace(model, torch.nn.Linear, lambda linear: Int8Linear(linear, dtype))
    return model.to(dtype)
