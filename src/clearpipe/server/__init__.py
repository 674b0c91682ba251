"""`clearpipe serve`: the HTTP service. Needs the `serve` extra (FastAPI, uvicorn, prometheus-client).

>>> from clearpipe.server import ServerConfig, create_app
>>> app = create_app(clearpipe.load("path/to/checkpoint"), ServerConfig())  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from clearpipe.server.config import ServerConfig

if TYPE_CHECKING:
    from clearpipe.server.app import create_app, create_zero_shot_app

__all__ = ["ServerConfig", "create_app", "create_zero_shot_app"]


def __getattr__(name: str) -> Any:
    # The app pulls in FastAPI and the model stack; the CLI reads only the config at start-up,
    # so `clearpipe classify` does not pay for importing a web framework.
    if name in ("create_app", "create_zero_shot_app"):
        from clearpipe.server import app

        return getattr(app, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
