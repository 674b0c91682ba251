"""`--lite` for `classify`, `predict` and `serve`: run an export folder with `clearpipe.lite`, without torch.

The flag takes the same loading options as the full classifier; those lite cannot honour (a GPU,
windows over long texts, another engine) are refused before anything loads.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from clearpipe.errors import InputError

if TYPE_CHECKING:
    from clearpipe.lite import LiteClassifier


def load(
    model: str | None,
    device: str,
    long_text: str,
    dtype: str,
    max_length: int | None,
    max_tokens: int | None,
    batch_size: int | None,
    calibrated: bool,
    recheck: bool,
    threads: int | None = None,
    min_score: float | None = None,
) -> LiteClassifier:
    """The lite classifier for these CLI options, or an `InputError` naming the one lite refuses.

    >>> load("exported/", "auto", "truncate", "auto", None, None, None, True, True)  # doctest: +SKIP
    """
    if model is None:
        raise InputError("--lite runs a folder written by `clearpipe export`: give it with --model")
    if device not in ("auto", "cpu"):
        raise InputError(f"--lite runs on the CPU; got --device {device}")
    if long_text != "truncate":
        raise InputError("--lite truncates long texts; --long-text chunk needs the full classifier")
    from clearpipe import lite

    options = load_options(dtype, max_length, max_tokens, batch_size, calibrated, recheck)
    return lite.load(model, threads=threads, min_score=min_score, **options)


def load_options(
    dtype: str,
    max_length: int | None,
    max_tokens: int | None,
    batch_size: int | None,
    calibrated: bool,
    recheck: bool,
) -> dict[str, Any]:
    """`lite.load`'s keyword arguments for these CLI options (all but where and on how many
    threads), for this process and for `predict --engine ray`'s workers.

    >>> load_options("auto", None, None, None, True, False)["referee"]
    False
    """
    return dict(
        dtype=dtype,
        max_length=max_length,
        max_tokens=max_tokens,
        batch_size=batch_size,
        calibrated=calibrated,
        referee=recheck,
    )
