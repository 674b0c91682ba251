"""Float linear layers with their weights laid out once for oneDNN: fp32 and bf16 models on the CPU.

`nn.Linear` hands the CPU's matrix-multiply library its weight in PyTorch's plain row-major
layout, and the library copies it into the blocked layout its kernels read, on every call. At
classification batch sizes that copy is a large share of the product: on the embedded MiniLM,
reordering each weight once when the model loads (`torch.ops.mkldnn._reorder_linear_weight`, the
step `torch.compile`'s CPU freezing pass takes) and calling oneDNN's linear on it
(`torch.ops.mkldnn._linear_pointwise`) ran SST-2 7% faster in bf16, AG News 24% faster, and
float32 twice as fast, with bit-identical bf16 logits and float32 ones within 1e-5.

These are private PyTorch operators: `available` checks that this build has them, and models
keep plain `nn.Linear` layers where it has not. The gains above are an AVX-512 CPU's (AMD Zen 4).
Without AVX-512 the weights stay plain: oneDNN refuses to lay out a bf16 weight there ("bf16 path
needs the cpu support ...", unless the CPU has AVX-NE-CONVERT; PyTorch emulates bf16 instead),
and its AVX2 float32 kernel lost to MKL's on an AMD Zen 3 (`benchmarks/prepacked_ab.py`, best of
four alternating passes each): float32 with plain layers ran the embedded model 11% faster on
SST-2 (287 against 260 texts/s), 12% on AG News (160 against 144) and the NER model 10% on
CoNLL-2003 (323 against 294 sentences/s). The packed copy costs the linear weights' size
again in memory (21 MB for the embedded model in bf16).
"""

from __future__ import annotations

import torch

from clearpipe.engine import cpu, linears

_DTYPES = (torch.float32, torch.bfloat16)  # fp16 on most CPUs is emulated: no gain to be had


def available() -> bool:
    """True when this PyTorch build has oneDNN's linear with prepacked weights (x86 builds do).

    >>> available()  # doctest: +SKIP
    True
    """
    ops = torch.ops.mkldnn
    return torch.backends.mkldnn.is_available() and all(
        hasattr(ops, name) for name in ("_reorder_linear_weight", "_linear_pointwise")
    )


class PrepackedLinear(torch.nn.Linear, linears.KernelLinear):
    """An `nn.Linear` that also keeps its weight laid out for oneDNN, for inference on the CPU.

    It keeps its parameters, so `state_dict`, `save_pretrained` and training see a plain
    linear layer. Forward passes without gradients (what `torch.inference_mode` runs) use the
    packed copy, which is made again if the weight changed (an optimizer step, `load_state_dict`,
    a dtype cast); passes that need gradients, and weights off the CPU, run `F.linear`.

    >>> layer = PrepackedLinear(torch.nn.Linear(384, 1536).to(torch.bfloat16))  # doctest: +SKIP
    >>> with torch.inference_mode():  # doctest: +SKIP
    ...     layer(torch.randn(7, 384, dtype=torch.bfloat16)).shape
    torch.Size([7, 1536])
    """

    def __init__(self, linear: torch.nn.Linear) -> None:
        bias = linear.bias is not None
        super().__init__(linear.in_features, linear.out_features, bias=bias, device="meta")
        self.weight = linear.weight
        self.bias = linear.bias
        # Packed at the first forward pass, on the thread that runs the model: see `_current`.
        self._packed: tuple[tuple[int, int, torch.dtype], torch.Tensor] | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.weight
        needs_grad = torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad)
        if needs_grad or weight.device.type != "cpu":  # oneDNN's op has no backward
            return torch.nn.functional.linear(x, weight, self.bias)
        return torch.ops.mkldnn._linear_pointwise(x, self._current(), self.bias, "none", [], None)

    def _current(self) -> torch.Tensor:
        """The packed weight, made again when the weight was written to or replaced.

        Made lazily, not when the model loads: reordering runs OpenMP threads, and once a
        second thread has its own OpenMP team (the server loads on the main thread and runs
        the model on its engine thread), libgomp counts more threads than cores and makes idle
        workers sleep almost at once instead of spinning. Every parallel region then pays a
        wake-up: server micro-batches ran 20% slower.
        """
        weight = self.weight
        # Tensors made under inference_mode count no versions: only a new tensor repacks them.
        version = -1 if weight.is_inference() else weight._version
        key = (weight.data_ptr(), version, weight.dtype)
        packed = self._packed
        if packed is None or packed[0] != key:
            # One tuple, one assignment: a thread never pairs a key with another weight's copy.
            packed = (key, torch.ops.mkldnn._reorder_linear_weight(weight.detach(), None))
            self._packed = packed
        return packed[1]

    def __getstate__(self) -> dict:
        # The packed tensor is opaque (it cannot be copied or pickled): copies pack their own.
        return self.__dict__ | {"_packed": None}

    def to_float(self) -> torch.nn.Linear:
        """The plain `nn.Linear`, sharing this layer's parameters.

        >>> PrepackedLinear(torch.nn.Linear(4, 2)).to_float().weight.shape  # doctest: +SKIP
        torch.Size([2, 4])
        """
        linear = torch.nn.Linear(
            self.in_features, self.out_features, bias=self.bias is not None, device="meta"
        )
        linear.weight = self.weight
        linear.bias = self.bias
        return linear


def prepack_model(model: torch.nn.Module) -> bool:
    """Swap, in place, every `nn.Linear` of a float32 or bf16 CPU `model` for a `PrepackedLinear`.

    Returns True when the model was changed. Models on other devices or in other dtypes, models
    on a CPU without AVX-512 (see the module docstring), and PyTorch builds without the
    operators, keep their layers.

    >>> prepack_model(AutoModelForSequenceClassification.from_pretrained(path).eval())  # doctest: +SKIP
    True
    """
    layers = [m for m in model.modules() if type(m) is torch.nn.Linear]
    if not layers or not available():
        return False
    if any(m.weight.device.type != "cpu" or m.weight.dtype not in _DTYPES for m in layers):
        return False
    if not all(_pays(m.weight.dtype) for m in layers):
        return False
    return linears.replace(model, torch.nn.Linear, PrepackedLinear, exact=True) > 0


def _pays(dtype: torch.dtype) -> bool:
    """Whether packing a weight of this dtype runs faster here (or at all): bf16 needs oneDNN's
    bf16 layout (`cpu.packs_bf16`); float32 pays with AVX-512 only, see the module docstring."""
    return cpu.packs_bf16() if dtype == torch.bfloat16 else cpu.avx512()
