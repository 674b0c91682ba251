"""`clearpipe serve`: classify over HTTP, with dynamic micro-batching."""

from __future__ import annotations

import dataclasses
from typing import Annotated

import typer

from clearpipe.cli import options, startup
from clearpipe.cli.loading import LoadFlags, from_flags
from clearpipe.server.config import API_KEY_ENV

PADDED_BATCH_SIZE = 8
"""Rows per forward pass in micro-batches that are padded: one micro-batch mixes sentences of
every length, and 8-row slices of its sorted rows padded SST-2 about 1.2x where 32-row ones
padded 1.9x. Packed micro-batches have no padding and run fastest as one forward pass."""


def serve(
    model: options.Model = None,
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on. Default: loopback only.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="TCP port.")] = 8000,
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key", envvar=API_KEY_ENV, help="Require 'Authorization: Bearer KEY'.", show_envvar=True
        ),
    ] = None,
    insecure: Annotated[
        bool, typer.Option("--insecure", help="Allow a non-loopback --host without an API key.")
    ] = False,
    max_length: options.MaxLength = None,
    batch_size: Annotated[
        int | None,
        typer.Option(
            "--batch-size",
            min=1,
            help="Rows per forward pass inside a micro-batch. Default: no cap for models that run "
            f"padding-free batches (BERT, DistilBERT, RoBERTa in bf16 on the CPU), {PADDED_BATCH_SIZE} "
            "for the others, whose unsorted micro-batches would otherwise pad heavily.",
        ),
    ] = None,
    threads: Annotated[
        int | None,
        typer.Option(
            "--threads",
            min=1,
            help="CPU threads (torch's, or the runtime's with --lite). Default: one per physical core.",
        ),
    ] = None,
    device: options.Device = "auto",
    dtype: options.Dtype = "auto",
    recheck: options.Recheck = True,
    long_text: options.LongText = "truncate",
    calibrated: options.Calibrated = True,
    min_score: options.MinScore = None,
    max_batch_tokens: Annotated[
        int, typer.Option("--max-batch-tokens", min=1, help="Token budget of one micro-batch.")
    ] = 8192,
    max_wait_ms: Annotated[
        float, typer.Option("--max-wait-ms", min=0, help="How long a micro-batch waits to fill.")
    ] = 5.0,
    target_batch_ms: Annotated[
        float,
        typer.Option(
            "--target-batch-ms",
            min=0.001,
            help="About how long one micro-batch may run; a large request is split into batches this "
            "long, so other clients wait about two of them.",
        ),
    ] = 200.0,
    max_queue: Annotated[
        int, typer.Option("--max-queue", min=1, help="Inputs allowed to wait; more get 429.")
    ] = 2048,
    timeout: Annotated[float, typer.Option("--timeout", min=0.001, help="Seconds before a 504.")] = 30.0,
    max_inputs: Annotated[int, typer.Option("--max-inputs", min=1, help="Inputs per request.")] = 256,
    max_request_tokens: Annotated[
        int,
        typer.Option(
            "--max-request-tokens",
            min=1,
            help="Tokens per request after tokenization, a long text's windows included; more gets 413.",
        ),
    ] = 32_768,
    max_chars: Annotated[int, typer.Option("--max-chars", min=1, help="Characters per input.")] = 20_000,
    max_body_bytes: Annotated[
        int, typer.Option("--max-body-bytes", min=1, help="Largest request body; more gets 413.")
    ] = 2 * 1024 * 1024,
    drain: Annotated[
        float, typer.Option("--drain", min=0, help="On SIGTERM, seconds to finish in-flight requests.")
    ] = 30.0,
    log_level: Annotated[str, typer.Option("--log-level", help="uvicorn log level.")] = "info",
    use_lite: options.Lite = False,
    zero_shot: Annotated[
        bool,
        typer.Option(
            "--zero-shot",
            help="Serve zero-shot classification: --model is a sentence encoder (default all-MiniLM-L6-v2) "
            "or an NLI checkpoint; POST /classify takes candidate_labels (and hypothesis_template, "
            "multi_label), POST /embed gives a sentence encoder's embeddings.",
        ),
    ] = False,
) -> None:
    """Serve a classifier over HTTP (POST /classify, /explain; GET /health, /ready, /info, /metrics, /docs),
    or with --zero-shot a zero-shot model (POST /classify with candidate_labels, POST /embed)."""
    import uvicorn

    from clearpipe.server import ServerConfig, create_app
    from clearpipe.server.security import check_bind

    check_bind(host, api_key, insecure)
    config = ServerConfig(
        api_key=api_key,
        max_batch_tokens=max_batch_tokens,
        max_wait_ms=max_wait_ms,
        target_batch_ms=target_batch_ms,
        max_queue=max_queue,
        timeout_s=timeout,
        max_inputs=max_inputs,
        max_request_tokens=max_request_tokens,
        max_chars=max_chars,
        max_body_bytes=max_body_bytes,
    ).check()
    flags = from_flags(LoadFlags, locals(), lite=use_lite)
    if zero_shot:
        _serve_zero_shot(flags, config, host, port, log_level, drain)
        return
    if use_lite:  # lite pads every batch
        flags = dataclasses.replace(flags, batch_size=rows_per_pass(batch_size, packs=False))
    served = flags.load()
    if not use_lite:
        served.settings = dataclasses.replace(
            served.settings, batch_size=rows_per_pass(batch_size, getattr(served, "packs", False))
        )
    startup.resume_collector()
    app = create_app(served, config)
    # uvicorn handles SIGTERM: it stops accepting, lets in-flight requests finish (up to
    # `drain` seconds), then runs the app's shutdown, which stops the batcher.
    uvicorn.run(app, host=host, port=port, log_level=log_level, timeout_graceful_shutdown=drain)


def _serve_zero_shot(flags: LoadFlags, config, host: str, port: int, log_level: str, drain: float) -> None:
    """`serve --zero-shot`: the flags zero-shot cannot honour refused by name, then its app."""
    import uvicorn

    from clearpipe.cli import zero_shot
    from clearpipe.server import create_zero_shot_app

    zero_shot.check_flags(flags, switch="--zero-shot")
    # A sentence encoder's micro-batches are padded (mean pooling reads every token): slices.
    model = zero_shot.load(
        dataclasses.replace(flags, batch_size=rows_per_pass(flags.batch_size, packs=False))
    )
    startup.resume_collector()
    app = create_zero_shot_app(model, config)
    uvicorn.run(app, host=host, port=port, log_level=log_level, timeout_graceful_shutdown=drain)


def rows_per_pass(requested: int | None, packs: bool) -> int | None:
    """The server's row cap per forward pass: `--batch-size` if given, else none for models that
    run packed batches and `PADDED_BATCH_SIZE` for the others.

    >>> rows_per_pass(None, packs=True), rows_per_pass(None, packs=False), rows_per_pass(16, packs=False)
    (None, 8, 16)
    """
    if requested is not None:
        return requested
    return None if packs else PADDED_BATCH_SIZE
