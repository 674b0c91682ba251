"""`clearpipe serve`: the HTTP service. Needs the `serve` extra (FastAPI, uvicorn, prometheus-client).

>>> from clearpipe.server import ServerConfig, create_app
>>> app = create_app(clearpipe.load("path/to/checkpoint"), ServerConfig())  # doctest: +SKIP
"""

from clearpipe.server.app import create_app
from clearpipe.server.config import ServerConfig

__all__ = ["ServerConfig", "create_app"]
