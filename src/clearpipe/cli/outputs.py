"""Where a command writes, checked before its work starts: a read-only location, a file where a
folder belongs or a folder where a file belongs is one `error:` line, not a traceback at the end.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from clearpipe.errors import InputError


def check_folder(path: Path, flag: str) -> None:
    """Refuse an output folder that is a file, or that cannot be created or written into.

    >>> check_folder(Path("runs/model"), "--output")
    """
    if path.exists() and not path.is_dir():
        raise InputError(f"{flag} {path} is a file; give a folder")
    _check_writable(path, flag)


def check_file(path: Path, flag: str, example: str) -> None:
    """Refuse an output file that is a folder (`example` is a file name to suggest inside it),
    or whose folder cannot be created or written into.

    >>> check_file(Path("trace.html"), "--html", "trace.html")
    """
    if path.is_dir():
        raise InputError(f"{flag} {path} is a folder; give a file name, such as {path / example}")
    _check_writable(path.parent, flag, path)


def _check_writable(folder: Path, flag: str, target: Path | None = None) -> None:
    # The nearest folder that exists is where the first file or folder would be created; trying
    # it is the only test that holds for root, read-only mounts and /proc alike.
    target = folder if target is None else target
    existing = _nearest_existing(folder)
    if not existing.is_dir():
        raise InputError(f"cannot write {flag} {target}: {existing} is a file, not a folder")
    try:
        fd, probe = tempfile.mkstemp(dir=existing, prefix=".clearpipe-probe-")
    except OSError as exc:
        raise InputError(
            f"cannot write {flag} {target}: cannot create a file in {existing} ({exc.strerror})"
        ) from None
    os.close(fd)
    os.unlink(probe)


def _nearest_existing(path: Path) -> Path:
    path = Path(os.path.abspath(path))
    while not path.exists() and path != path.parent:
        path = path.parent
    return path
