"""Who may use the server: a bearer key on the routes that do work, and a safe default bind."""

from __future__ import annotations

import hmac
import ipaddress

from fastapi import HTTPException, Request

from clearpipe.errors import InputError
from clearpipe.server.config import API_KEY_ENV


async def require_key(request: Request) -> None:
    """FastAPI dependency: with a key configured, demand `Authorization: Bearer <key>`."""
    # `async` although nothing here waits: FastAPI runs a plain `def` dependency on a worker
    # thread, a hop per request that cost the event loop more than the check itself.
    expected = request.app.state.service.config.api_key
    if not key_matches(request.headers.get("authorization", ""), expected):
        raise HTTPException(
            status_code=401,
            detail="missing or wrong API key: send the header 'Authorization: Bearer <key>'",
            headers={"WWW-Authenticate": "Bearer"},
        )


def key_matches(authorization: str, expected: str | None) -> bool:
    """True when no key is configured, or when `authorization` is `Bearer <expected>`.

    >>> key_matches("Bearer s3cret", "s3cret"), key_matches("", "s3cret"), key_matches("", None)
    (True, False, True)
    """
    if expected is None:
        return True
    scheme, _, given = authorization.partition(" ")
    # compare_digest takes the same time whatever the key's first wrong character.
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), expected.encode())


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach ("localhost", 127.0.0.0/8, ::1).

    >>> is_loopback("127.0.0.1"), is_loopback("0.0.0.0")
    (True, False)
    """
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, api_key: str | None, insecure: bool) -> None:
    """Refuse to expose the server beyond this machine without a key, unless told to."""
    if api_key or insecure or is_loopback(host):
        return
    raise InputError(
        f"refusing to listen on {host} without an API key: anyone who can reach it could use the model. "
        f"Pass --api-key KEY (or set {API_KEY_ENV}), or --insecure to serve without one"
    )
