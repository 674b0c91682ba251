"""Dynamic micro-batching: the one owner of the request queue.

Requests arrive already tokenized. The batcher groups them until their tokens reach a budget
or a few milliseconds have passed (on the monotonic clock) since the oldest arrived or the
engine came free, whichever is later; runs the group through
the engine on a worker thread so the event loop keeps serving, checks that it got one row of
logits per input, and hands each request its own rows. Requests whose client left or whose
time ran out are taken out of the queue without touching the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np

from clearpipe.server.config import ServerConfig
from clearpipe.server.metrics import Metrics
from clearpipe.tokens import Tokenized

T = TypeVar("T")


class QueueFull(Exception):
    """The queue holds as many inputs as it may; the client should retry later."""

    def __init__(self, queued: int, limit: int) -> None:
        super().__init__(f"the server is busy: {queued} inputs are queued (limit {limit}); retry shortly")


class Timeout(Exception):
    """The request was not answered within the server's timeout."""


class ClientGone(Exception):
    """The client disconnected before its answer was ready."""


@dataclass(frozen=True)
class Answer:
    """One request's share of a batch: its logits (rows, num_labels) and where the time went."""

    logits: np.ndarray
    queue_s: float
    inference_s: float
    batch_inputs: int


@dataclass(eq=False)
class Job:
    """A request waiting in the queue."""

    tokenized: Tokenized
    future: asyncio.Future[Answer]
    enqueued: float = field(default_factory=time.monotonic)
    rows: int = field(init=False)
    tokens: int = field(init=False)

    def __post_init__(self) -> None:
        self.rows = len(self.tokenized)
        self.tokens = sum(self.tokenized.lengths)


class Batcher:
    """Queue tokenized requests and run them in micro-batches through `run` (Tokenized -> logits).

    >>> batcher = Batcher(run=lambda tok: logits_for(tok), config=ServerConfig())  # doctest: +SKIP
    >>> await batcher.start(); answer = await batcher.result(batcher.submit(tokenized))  # doctest: +SKIP
    """

    def __init__(
        self,
        run: Callable[[Tokenized], np.ndarray],
        config: ServerConfig,
        metrics: Metrics | None = None,
    ) -> None:
        self._run = run
        self._config = config
        self._metrics = metrics or Metrics()
        self._queue: deque[Job] = deque()
        self._queued_rows = 0
        self._queued_tokens = 0
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._free_since = 0.0  # monotonic time the engine last finished a batch
        # One thread: batches (and traces) run one at a time, as the model is not shared safely.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="clearpipe-engine")

    # Lifecycle -------------------------------------------------------------------------------
    async def start(self) -> None:
        self._wakeup = asyncio.Event()
        self._task = asyncio.create_task(self._serve_forever(), name="clearpipe-batcher")

    async def stop(self) -> None:
        """Stop batching; anything still queued is answered with an error, never left hanging."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        while self._queue:
            job = self._pop()
            if not job.future.done():
                job.future.set_exception(RuntimeError("the server is shutting down"))
        await asyncio.get_running_loop().run_in_executor(None, self._executor.shutdown)

    @property
    def queued_inputs(self) -> int:
        return self._queued_rows

    # Requests --------------------------------------------------------------------------------
    def submit(self, tokenized: Tokenized) -> Job:
        """Queue one request's inputs, or raise `QueueFull` if they would not fit."""
        if self._queued_rows + len(tokenized) > self._config.max_queue:
            self._metrics.dropped.labels(reason="queue_full").inc()
            raise QueueFull(self._queued_rows, self._config.max_queue)
        job = Job(tokenized, asyncio.get_running_loop().create_future())
        self._queue.append(job)
        self._account(job, +1)
        assert self._wakeup is not None, "Batcher.start() was not awaited"
        self._wakeup.set()
        return job

    async def result(self, job: Job, disconnected: Callable[[], Awaitable[object]] | None = None) -> Answer:
        """Wait for a job's answer; raise `Timeout` past the deadline, `ClientGone` if the client left."""
        remaining = job.enqueued + self._config.timeout_s - time.monotonic()
        watcher = asyncio.ensure_future(disconnected()) if disconnected is not None else None
        waiting = {job.future} if watcher is None else {job.future, watcher}
        try:
            done, _ = await asyncio.wait(waiting, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if watcher is not None:
                watcher.cancel()
        if job.future.done():
            return job.future.result()
        self._drop(job)
        if watcher is not None and watcher in done:
            self._metrics.dropped.labels(reason="client_gone").inc()
            raise ClientGone()
        self._metrics.dropped.labels(reason="timeout").inc()
        raise Timeout(f"no answer within the server's timeout of {self._config.timeout_s:g} s")

    async def run_exclusive(self, fn: Callable[..., T], *args: object) -> T:
        """Run `fn(*args)` on the engine thread, between batches (e.g. a trace)."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    # The loop --------------------------------------------------------------------------------
    async def _serve_forever(self) -> None:
        while True:
            jobs = await self._collect()
            if jobs:
                try:
                    await self._run_batch(jobs)
                finally:
                    self._free_since = time.monotonic()

    async def _collect(self) -> list[Job]:
        """Wait for a first job, then for more until the token budget or the deadline.

        The deadline is `max_wait` after the oldest job arrived or after the engine came free,
        whichever is later. Under load, jobs that queued while a batch ran have already waited
        longer than `max_wait`: counted from their arrival, the batcher would send them off
        alone the moment the batch ended, just before the answered clients' next requests came
        in. At 32 clients that made every other batch a single straggler (batches of 31, 1,
        31, 1, ...), a whole forward pass for one sentence."""
        assert self._wakeup is not None
        while not self._queue:
            self._wakeup.clear()
            await self._wakeup.wait()
        deadline = max(self._queue[0].enqueued, self._free_since) + self._config.max_wait_s
        while self._queue and self._queued_tokens < self._config.max_batch_tokens:
            wait = deadline - time.monotonic()
            if wait <= 0:
                break
            self._wakeup.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), wait)
        return self._take()

    def _take(self) -> list[Job]:
        jobs: list[Job] = []
        tokens = 0
        budget = self._config.max_batch_tokens
        # The first job always goes, even one larger than the budget on its own.
        while self._queue and (not jobs or tokens + self._queue[0].tokens <= budget):
            job = self._pop()
            jobs.append(job)
            tokens += job.tokens
        return jobs

    async def _run_batch(self, jobs: list[Job]) -> None:
        started = time.monotonic()
        merged = concat([job.tokenized for job in jobs])
        self._metrics.batch_size.observe(len(merged))
        self._metrics.tokens.inc(sum(merged.lengths))
        try:
            logits = await self._logits(merged)
        except Exception as exc:
            if len(jobs) == 1:
                if not jobs[0].future.done():
                    jobs[0].future.set_exception(exc)
                return
            # One request's rows must not fail the others': run each alone to find the culprit.
            for job in jobs:
                await self._run_batch([job])
            return
        inference_s = time.monotonic() - started
        offset = 0
        for job in jobs:
            if not job.future.done():  # its client may have left while the batch ran
                answer = Answer(
                    logits[offset : offset + job.rows], started - job.enqueued, inference_s, len(merged)
                )
                job.future.set_result(answer)
            offset += job.rows

    async def _logits(self, tokenized: Tokenized) -> np.ndarray:
        logits = await asyncio.get_running_loop().run_in_executor(self._executor, self._run, tokenized)
        check_one_for_one(logits, len(tokenized))
        return logits

    # Queue bookkeeping -----------------------------------------------------------------------
    def _pop(self) -> Job:
        job = self._queue.popleft()
        self._account(job, -1)
        return job

    def _drop(self, job: Job) -> None:
        job.future.cancel()
        try:
            self._queue.remove(job)
        except ValueError:
            return  # already taken into a batch
        self._account(job, -1)

    def _account(self, job: Job, sign: int) -> None:
        self._queued_rows += sign * job.rows
        self._queued_tokens += sign * job.tokens
        self._metrics.queue_depth.set(self._queued_rows)


def concat(parts: Sequence[Tokenized]) -> Tokenized:
    """Join several requests' tokenized rows into one, in order.

    >>> len(concat([tok_a, tok_b])) == len(tok_a) + len(tok_b)  # doctest: +SKIP
    True
    """
    with_types = [p.token_type_ids for p in parts if p.token_type_ids is not None]
    return Tokenized(
        input_ids=[row for p in parts for row in p.input_ids],
        token_type_ids=[row for types in with_types for row in types] if with_types else None,
        truncated=[flag for p in parts for flag in p.truncated],
    )


def check_one_for_one(logits: np.ndarray, inputs: int) -> None:
    """Refuse an engine answer that does not have exactly one row per input."""
    if logits.ndim != 2 or logits.shape[0] != inputs:
        raise RuntimeError(f"the engine returned logits of shape {logits.shape} for {inputs} inputs")
