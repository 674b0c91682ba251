"""The server's knobs in one frozen dataclass, shared by the CLI, the app and the batcher."""

from __future__ import annotations

from dataclasses import dataclass

from clearpipe.errors import InputError

API_KEY_ENV = "CLEARPIPE_API_KEY"
"""Environment variable read for the bearer key when `--api-key` is not given."""


@dataclass(frozen=True)
class ServerConfig:
    """Limits and batching settings of one server.

    A micro-batch closes when its inputs reach `max_batch_tokens` real tokens (fewer if the
    engine would take longer than `target_batch_ms` on them) or `max_wait_ms` after its oldest
    request arrived or the engine came free (whichever is later), whichever comes first.

    >>> ServerConfig(max_wait_ms=2.0).max_wait_s
    0.002
    """

    api_key: str | None = None
    max_batch_tokens: int = 8192
    max_wait_ms: float = 5.0
    target_batch_ms: float = 200.0
    """About how long one micro-batch may run: a client that arrives while a large request runs
    waits for about two of them. Fewer tokens than `max_batch_tokens` go into a micro-batch
    where the engine's recent speed says they would take longer."""
    max_queue: int = 2048
    """Inputs allowed to wait for a batch; more answers 429."""
    timeout_s: float = 30.0
    """A request still unanswered after this long gets 504."""
    max_inputs: int = 256
    max_request_tokens: int = 32_768
    """Tokens one request may queue (a long text's windows all count); more answers 413. It
    bounds a request's work before it is queued: 32,768 tokens are 256 inputs of 128 tokens,
    or 64 windows of 512, four micro-batches at the default budget."""
    max_chars: int = 20_000
    max_body_bytes: int = 2 * 1024 * 1024

    @property
    def max_wait_s(self) -> float:
        return self.max_wait_ms / 1000.0

    @property
    def target_batch_s(self) -> float:
        return self.target_batch_ms / 1000.0

    def check(self) -> ServerConfig:
        """Raise `InputError` for settings that cannot work; return self."""
        positive = {
            "max_batch_tokens": self.max_batch_tokens,
            "max_queue": self.max_queue,
            "timeout_s": self.timeout_s,
            "target_batch_ms": self.target_batch_ms,
            "max_inputs": self.max_inputs,
            "max_request_tokens": self.max_request_tokens,
            "max_chars": self.max_chars,
            "max_body_bytes": self.max_body_bytes,
        }
        for name, value in positive.items():
            if value <= 0:
                raise InputError(f"{name} must be positive, got {value}")
        if self.max_wait_ms < 0:
            raise InputError(f"max_wait_ms must be zero or more, got {self.max_wait_ms}")
        if self.api_key is not None and not self.api_key.strip():
            raise InputError("the API key is empty; give a non-empty key or none")
        return self
