"""Swapping a model's `nn.Linear` layers for faster CPU kernels, and back.

`clearpipe.engine.int8` (int8 weights) and `clearpipe.engine.prepacked` (float weights laid out once for
oneDNN) replace a loaded model's linear layers in place with `KernelLinear`s. What needs plain
layers (gradients through int8 weights for token attributions, the ONNX exporter) gets them
back with `restore`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import torch

M = TypeVar("M", bound=torch.nn.Module)


class KernelLinear(torch.nn.Module):
    """Base of the layers that stand in for `nn.Linear`: `to_float` gives the plain layer back."""

    in_features: int
    out_features: int

    def to_float(self) -> torch.nn.Linear:
        """The float32 `nn.Linear` this layer computes."""
        raise NotImplementedError


def replace(
    model: torch.nn.Module, kind: type[M], make: Callable[[M], torch.nn.Module], *, exact: bool = False
) -> int:
    """Swap, in place, every submodule of `model` that is a `kind` for `make(it)`; return how many.

    `exact` skips subclasses of `kind`, which may compute something else.

    >>> replace(model, torch.nn.Linear, PrepackedLinear, exact=True)  # doctest: +SKIP
    38
    """
    swapped = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is kind if exact else isinstance(child, kind):
                setattr(parent, name, make(child))
                swapped += 1
    return swapped


def restore(model: M) -> M:
    """Replace, in place, every `KernelLinear` of `model` by the plain `nn.Linear` it computes.

    The rest of the model keeps its dtype: follow with `.float()` for a float32 model.

    >>> model = restore(copy.deepcopy(clf.model)).float()  # doctest: +SKIP
    """
    replace(model, KernelLinear, lambda layer: layer.to_float())
    return model
