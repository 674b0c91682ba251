"""The loading flags of `classify`, `predict`, `serve` and `trace`, in one object.

Each command declares its flags (`cli/options.py`) and hands them here once, as a `LoadFlags`;
`LoadFlags.load()` turns them into a classifier: `clearpipe.load` with torch, or with `--lite`
`clearpipe.lite.load` over an exported folder, after refusing, by name, the flags lite cannot
honour (a GPU, windows over long texts). `full_options` and `lite_options` are the two keyword
sets, the only place the flags are mapped onto either loader, so `predict --engine ray` sends its
workers exactly what this process loaded with.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from clearpipe.errors import InputError

if TYPE_CHECKING:
    from clearpipe.contract import TextClassifier

T = TypeVar("T")


@dataclass(frozen=True)
class LoadFlags:
    """What a command's loading flags ask for; see the module docstring.

    >>> LoadFlags(model="exported/", lite=True, min_score=0.8).lite_options()["min_score"]
    0.8
    """

    model: str | None = None
    device: str = "auto"
    dtype: str = "auto"
    max_length: int | None = None
    max_tokens: int | None = None
    batch_size: int | None = None
    recheck: bool = True
    long_text: str = "truncate"
    calibrated: bool = True
    min_score: float | None = None
    threads: int | None = None
    lite: bool = False

    def load(self) -> TextClassifier:
        """The classifier these flags describe (lite's refusals first, before anything loads)."""
        if self.lite:
            self.check_lite()
            from clearpipe import lite

            return lite.load(self.model, threads=self.threads, **self.lite_options())
        import clearpipe

        return clearpipe.load(self.model, threads=self.threads, **self.full_options())

    def full_options(self) -> dict[str, Any]:
        """`clearpipe.load`'s keyword arguments (all but the model and the threads).

        >>> LoadFlags(dtype="int8").full_options()["dtype"]
        'int8'
        """
        return dict(
            max_length=self.max_length,
            batch_size=self.batch_size,
            max_tokens=self.max_tokens,
            device=self.device,
            dtype=self.dtype,
            recheck=self.recheck,
            long_text=self.long_text,
            calibrated=self.calibrated,
            min_score=self.min_score,
        )

    def lite_options(self) -> dict[str, Any]:
        """`clearpipe.lite.load`'s keyword arguments (all but the folder and the threads).

        >>> LoadFlags(recheck=False).lite_options()["referee"]
        False
        """
        return dict(
            dtype=self.dtype,
            max_length=self.max_length,
            max_tokens=self.max_tokens,
            batch_size=self.batch_size,
            calibrated=self.calibrated,
            referee=self.recheck,
            min_score=self.min_score,
        )

    def check_lite(self) -> None:
        """Refuse, by name, what `--lite` cannot do."""
        if self.model is None:
            raise InputError("--lite runs a folder written by `clearpipe export`: give it with --model")
        if self.device not in ("auto", "cpu"):
            raise InputError(f"--lite runs on the CPU; got --device {self.device}")
        if self.long_text != "truncate":
            raise InputError("--lite truncates long texts; --long-text chunk needs the full classifier")


def from_flags(cls: type[T], flags: Mapping[str, Any], **given: Any) -> T:
    """A dataclass (`TrainConfig`, say) filled from a command's flags: each field takes the flag of
    its own name, `given` the values that are not a flag as is (paths made strings, nested
    options); a field with neither keeps its default. A new field thus takes its flag without a
    line here, and a flag cannot be copied into the wrong field.

    >>> from_flags(LoadFlags, {"dtype": "int8", "unrelated": 1}, model="m").dtype
    'int8'
    """
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    return cls(**{k: v for k, v in flags.items() if k in names and k not in given}, **given)
