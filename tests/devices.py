"""The devices the device-parametrized tests run on: the CPU always, CUDA where a GPU is present.

On a machine without a GPU the CUDA cases show as skipped, so a run says what it did not check.
A machine with one runs them all; docs/ENGINE.md ("On a GPU") gives the command.
"""

from __future__ import annotations

import pytest
import torch

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
DEVICES = ["cpu", pytest.param("cuda", marks=CUDA)]
GPUS = [pytest.param("cuda", marks=CUDA)]  # for tests that compare a GPU run with the CPU's
# Float32 kernels on a GPU sum in other orders than the CPU's: scores may move by this much.
GPU_TOLERANCE = 1e-4


def tolerance(device: str | torch.device, cpu: float) -> float:
    """The tolerance of a float32 comparison with the CPU reference, for `device`."""
    return cpu if torch.device(device).type == "cpu" else max(cpu, GPU_TOLERANCE)
