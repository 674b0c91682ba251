"""The JSON body of every error the server answers, and which exception gets which status.

Shared by FastAPI's exception handlers and the lean `/classify` route, so that a request gets
the same answer whichever door it came through.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.responses import JSONResponse, Response

from clearpipe.errors import InputError
from clearpipe.server.batcher import ClientGone, QueueFull, Timeout, TooLarge


def error(status: int, message: str, kind: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """`{"error": message, "type": kind}` with the given status.

    >>> error(422, "input 0 is empty", "invalid_request").status_code
    422
    """
    return JSONResponse({"error": message, "type": kind}, status_code=status, headers=headers)


def shutting_down() -> JSONResponse:
    """503 to a request the server stopped working on because it is shutting down.

    >>> shutting_down().status_code
    503
    """
    return error(
        503,
        "the server shut down before this request was answered; retry",
        "shutting_down",
        {"Retry-After": "1"},
    )


def _gone(exc: Exception) -> Response:
    # Nobody is listening; 499 (nginx's "client closed request") keeps the metrics honest.
    return Response(status_code=499)


_ANSWERS: dict[type[Exception], Callable[[Exception], Response]] = {
    InputError: lambda exc: error(422, str(exc), "invalid_request"),
    TooLarge: lambda exc: error(413, str(exc), "too_large"),
    QueueFull: lambda exc: error(429, str(exc), "overloaded", {"Retry-After": "1"}),
    Timeout: lambda exc: error(504, str(exc), "timeout"),
    ClientGone: _gone,
}

HANDLED = tuple(_ANSWERS)
"""The exception types `for_exception` answers."""


def for_exception(exc: Exception) -> Response | None:
    """The answer to a client's mistake or to the server's load, or None for anything else (a bug).

    >>> for_exception(QueueFull(2048, 2048)).status_code
    429
    """
    for kind, answer in _ANSWERS.items():
        if isinstance(exc, kind):
            return answer(exc)
    return None
