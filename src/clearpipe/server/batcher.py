"""Dynamic micro-batching: the one owner of the request queue.

Requests arrive already tokenized, each bounded before it is queued (`max_request_tokens`
tokens, no more rows than the queue holds). The batcher waits until the queued tokens reach a
budget or a few milliseconds have passed (on the monotonic clock) since the oldest request
arrived or the engine came free, whichever is later. It then fills one micro-batch round-robin
across the queued requests, one row from each in turn, so a request larger than a micro-batch
is split over several and everyone else's rows ride in each of them. One row of every request
fits into a micro-batch up to `max_batch_tokens`; a request's further rows only up to the
tokens the engine runs in about `target_batch_ms` at its recent speed, so a client that arrives
while a large request runs waits for about two short micro-batches, however fast or busy the
machine. The batcher runs each micro-batch through the engine
on a worker thread so the event loop keeps serving; checks that it got one row of logits per
row; and hands each request its rows, answering it once all of them are back. Requests whose
client left, whose deadline passed or that failed leave the queue, so no later micro-batch
spends time on them.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
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


class TooLarge(Exception):
    """One request holds more work than the server takes in one request; retrying cannot help."""


class Timeout(Exception):
    """The request was not answered within the server's timeout."""


class ClientGone(Exception):
    """The client disconnected before its answer was ready."""


@dataclass(frozen=True)
class Answer:
    """One request's logits (rows, num_labels) and where the time went: waiting for its first
    micro-batch, in the engine (summed over its micro-batches), and the largest micro-batch."""

    logits: np.ndarray
    queue_s: float
    inference_s: float
    batch_inputs: int


@dataclass(eq=False)
class Job:
    """A request in the queue: its rows, how many the engine has taken and answered, its deadline."""

    tokenized: Tokenized
    future: asyncio.Future[Answer]
    deadline: float
    enqueued: float = field(default_factory=time.monotonic)
    queued: bool = False  # in the batcher's queue: it has rows the engine has not taken yet
    taken: int = 0  # rows handed to the engine so far, in order
    answered: int = 0

    def __post_init__(self) -> None:
        self.lengths = self.tokenized.lengths
        self.rows = len(self.lengths)
        self.tokens = sum(self.lengths)
        self.untaken_tokens = self.tokens
        self._logits: np.ndarray | None = None
        self._first_batch: float | None = None
        self._inference_s = 0.0
        self._batch_inputs = 0

    def rows_of(self, start: int, stop: int) -> Tokenized:
        """Rows `start:stop` of the request, as the engine takes them."""
        if start == 0 and stop == self.rows:
            return self.tokenized
        types = self.tokenized.token_type_ids
        return Tokenized(
            input_ids=self.tokenized.input_ids[start:stop],
            token_type_ids=None if types is None else types[start:stop],
            truncated=self.tokenized.truncated[start:stop],
        )

    def deliver(
        self, start: int, logits: np.ndarray, batch_started: float, inference_s: float, batch: int
    ) -> None:
        """Keep the logits of rows `start:start + len(logits)`; answer once every row has some."""
        if self.future.done():  # its client left, its time ran out, or another part failed
            return
        if start == 0 and len(logits) == self.rows:
            self._logits = logits
        else:
            if self._logits is None:
                self._logits = np.empty((self.rows, logits.shape[1]), dtype=logits.dtype)
            self._logits[start : start + len(logits)] = logits
        self.answered += len(logits)
        if self._first_batch is None:
            self._first_batch = batch_started
        self._inference_s += inference_s
        self._batch_inputs = max(self._batch_inputs, batch)
        if self.answered == self.rows:
            assert self._logits is not None
            queue_s = self._first_batch - self.enqueued
            self.future.set_result(Answer(self._logits, queue_s, self._inference_s, self._batch_inputs))


@dataclass(frozen=True)
class Part:
    """Rows `start:stop` of one job, riding in a micro-batch."""

    job: Job
    start: int
    stop: int


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
        # Requests with rows not yet taken, in round-robin order: a request that gives a row
        # to a micro-batch moves to the back.
        self._queue: deque[Job] = deque()
        self._queued_rows = 0
        self._queued_tokens = 0
        self._running: list[Part] = []
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._free_since = 0.0  # monotonic time the engine last finished a batch
        self._seconds_per_token: float | None = None  # the engine's recent speed, from its batches
        # One thread: batches (and traces) run one at a time, as the model is not shared safely.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="clearpipe-engine")

    # Lifecycle -------------------------------------------------------------------------------
    async def start(self) -> None:
        self._wakeup = asyncio.Event()
        self._task = asyncio.create_task(self._serve_forever(), name="clearpipe-batcher")

    async def stop(self) -> None:
        """Stop batching; every request not yet answered gets an error, never left hanging.

        Waits for the micro-batch in the engine, if any, which is sized to take about
        `target_batch_ms`."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for job in [*self._queue, *(part.job for part in self._running)]:
            self._discard(job, cancel=False)
            if not job.future.done():
                job.future.set_exception(RuntimeError("the server is shutting down"))
        shutdown = functools.partial(self._executor.shutdown, wait=True, cancel_futures=True)
        await asyncio.get_running_loop().run_in_executor(None, shutdown)

    @property
    def queued_inputs(self) -> int:
        """Rows waiting for the engine (a long text's windows count one each)."""
        return self._queued_rows

    # Requests --------------------------------------------------------------------------------
    def submit(self, tokenized: Tokenized) -> Job:
        """Queue one request's rows; raise `TooLarge` for a request over the per-request limits,
        `QueueFull` if it would not fit now.

        >>> job = batcher.submit(clf.tokenize(["a fine film"]))  # doctest: +SKIP
        """
        now = time.monotonic()
        future = asyncio.get_running_loop().create_future()
        job = Job(tokenized, future, deadline=now + self._config.timeout_s, enqueued=now)
        self._check_size(job)
        if self._queued_rows + job.rows > self._config.max_queue:
            self._metrics.dropped.labels(reason="queue_full").inc()
            raise QueueFull(self._queued_rows, self._config.max_queue)
        self._enqueue(job)
        assert self._wakeup is not None, "Batcher.start() was not awaited"
        self._wakeup.set()
        return job

    def check_tokens(self, tokenized: Tokenized) -> None:
        """Raise `TooLarge` for a request over `max_request_tokens` (a long text's windows all
        count), as `submit` does: for work that runs on the engine thread without being queued
        (a NER request, `run_exclusive`), so that one huge request cannot hold the engine.

        >>> batcher.check_tokens(ner.tokenize(texts).tokenized)  # doctest: +SKIP
        """
        lengths = tokenized.lengths
        message = self._tokens_message(sum(lengths), len(lengths))
        if message is not None:
            self._metrics.dropped.labels(reason="too_large").inc()
            raise TooLarge(message)

    def _tokens_message(self, tokens: int, rows: int) -> str | None:
        limit = self._config.max_request_tokens
        if tokens <= limit:
            return None
        return (
            f"the request is {tokens} tokens ({rows} rows, a long text's windows counted "
            f"one each), over the limit of {limit} tokens per request "
            "(max_request_tokens); send fewer or shorter inputs"
        )

    def _check_size(self, job: Job) -> None:
        config = self._config
        message = self._tokens_message(job.tokens, job.rows)
        if message is None and job.rows > config.max_queue:
            message = (
                f"the request is {job.rows} rows (a long text's windows counted one each), more than "
                f"the queue holds (max_queue {config.max_queue}); send fewer or shorter inputs"
            )
        if message is None:
            return
        self._metrics.dropped.labels(reason="too_large").inc()
        raise TooLarge(message)

    async def result(self, job: Job, disconnected: Callable[[], Awaitable[object]] | None = None) -> Answer:
        """Wait for a job's answer; raise `Timeout` past the deadline, `ClientGone` if the client left.

        Either way, and when the waiting task is cancelled (a shutdown past its drain time), the
        job's rows not yet taken leave the queue.

        >>> answer = await batcher.result(job)  # doctest: +SKIP
        """
        remaining = job.deadline - time.monotonic()
        watcher = asyncio.ensure_future(disconnected()) if disconnected is not None else None
        waiting = {job.future} if watcher is None else {job.future, watcher}
        try:
            done, _ = await asyncio.wait(waiting, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            self._discard(job)
            raise
        finally:
            if watcher is not None:
                watcher.cancel()
        if job.future.done():
            return job.future.result()
        self._discard(job)
        if watcher is not None and watcher in done:
            self._metrics.dropped.labels(reason="client_gone").inc()
            raise ClientGone()
        self._metrics.dropped.labels(reason="timeout").inc()
        raise Timeout(f"no answer within the server's timeout of {self._config.timeout_s:g} s")

    async def run_exclusive(self, fn: Callable[..., T], *args: object) -> T:
        """Run `fn(*args)` on the engine thread, between batches (e.g. a trace).

        >>> trace = await batcher.run_exclusive(clf.trace, "a fine film")  # doctest: +SKIP
        """
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    # The loop --------------------------------------------------------------------------------
    async def _serve_forever(self) -> None:
        while True:
            await self._collect()
            parts = self._take()
            if parts:
                self._running = parts
                try:
                    await self._run_batch(parts)
                finally:
                    self._running = []
                    self._free_since = time.monotonic()

    async def _collect(self) -> None:
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
        oldest = min(job.enqueued for job in self._queue)
        deadline = max(oldest, self._free_since) + self._config.max_wait_s
        while self._queue and self._queued_tokens < self._config.max_batch_tokens:
            wait = deadline - time.monotonic()
            if wait <= 0:
                break
            self._wakeup.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), wait)

    def _take(self) -> list[Part]:
        """Fill one micro-batch round-robin: each queued job in turn gives its next row, then
        goes to the back of the queue.

        The first round, one row of every queued job, stops only at `max_batch_tokens`, as a
        batch of one-sentence requests always did. Further rounds, the rows of jobs that
        already have one in this batch, stop at `_time_budget()`. A job larger than that is
        thus split over several micro-batches that each take about `target_batch_ms`, and
        every other job gets a row into each of them: one large request cannot hold the
        engine while the others wait. The first row always goes, even one larger than the
        budget on its own. Jobs whose deadline has passed are dropped here, before any more
        of their rows run."""
        budget, time_budget = self._config.max_batch_tokens, self._time_budget()
        starts: dict[Job, int] = {}  # job -> its first row in this batch, in the batch's order
        tokens = 0
        now = time.monotonic()
        while self._queue:
            job = self._queue[0]
            if job.future.done() or job.deadline <= now:
                self._discard(job, cancel=False)  # `result` answers it at its deadline
                continue
            length = job.lengths[job.taken] if job.rows else 0
            # A job seen again means every queued job has a row in: the first round is over.
            limit = time_budget if job in starts else budget
            if starts and tokens + length > limit:
                break
            starts.setdefault(job, job.taken)
            tokens += length
            self._take_row(job)
        return [Part(job, start, job.taken) for job, start in starts.items()]

    def _time_budget(self) -> int:
        """Tokens a micro-batch may reach with a job's second and later rows: those the engine
        runs in about `target_batch_ms` at its recent speed, between an eighth of
        `max_batch_tokens` and all of it.

        The speed is seconds per token over recent batches, fixed costs included, so it
        overrates small batches' cost and the budget grows batch by batch toward the tokens
        that take `target_batch_ms`; it follows the machine's load too. The floor keeps a
        request of many rows moving on a machine so busy that a batch's fixed costs alone
        take longer than the target."""
        most = self._config.max_batch_tokens
        if self._seconds_per_token is None:
            return most
        fits = int(self._config.target_batch_s / self._seconds_per_token)
        return min(most, max(fits, most // 8, 1))

    def _note_speed(self, tokens: int, seconds: float) -> None:
        if tokens:
            latest = seconds / tokens
            previous = self._seconds_per_token or latest
            self._seconds_per_token = (previous + latest) / 2  # recent batches weigh most

    def _take_row(self, job: Job) -> None:
        """Hand the job's next row to the batch being filled; the job goes to the back."""
        self._queue.popleft()
        self._account(job, -1)
        if job.rows:
            job.untaken_tokens -= job.lengths[job.taken]
            job.taken += 1
        if job.taken < job.rows:
            self._queue.append(job)
            self._account(job, +1)
        else:
            job.queued = False

    async def _run_batch(self, parts: list[Part]) -> None:
        started = time.monotonic()
        merged = concat([part.job.rows_of(part.start, part.stop) for part in parts])
        self._metrics.batch_size.observe(len(merged))
        self._metrics.tokens.inc(sum(merged.lengths))
        try:
            logits = await self._logits(merged)
        except Exception as exc:
            if len(parts) == 1:
                self._fail(parts[0].job, exc)
                return
            # One request's rows must not fail the others': run each part alone to find the culprit.
            for part in parts:
                if not part.job.future.done():
                    await self._run_batch([part])
            return
        inference_s = time.monotonic() - started
        self._note_speed(sum(merged.lengths), inference_s)
        offset = 0
        for part in parts:
            rows = part.stop - part.start
            part.job.deliver(part.start, logits[offset : offset + rows], started, inference_s, len(merged))
            offset += rows

    async def _logits(self, tokenized: Tokenized) -> np.ndarray:
        logits = await asyncio.get_running_loop().run_in_executor(self._executor, self._run, tokenized)
        check_one_for_one(logits, len(tokenized))
        return logits

    # Queue bookkeeping -----------------------------------------------------------------------
    def _enqueue(self, job: Job) -> None:
        job.queued = True
        self._queue.append(job)
        self._account(job, +1)

    def _fail(self, job: Job, exc: Exception) -> None:
        """A job whose rows broke the engine: answer it with the error, drop its other rows."""
        self._discard(job, cancel=False)
        if not job.future.done():
            job.future.set_exception(exc)

    def _discard(self, job: Job, cancel: bool = True) -> None:
        """Take a job's remaining rows out of the queue (and, by default, cancel its answer)."""
        if cancel:
            job.future.cancel()
        if job.queued:
            self._queue.remove(job)
            self._account(job, -1)
            job.queued = False

    def _account(self, job: Job, sign: int) -> None:
        """Count (+1) or uncount (-1) the job's rows not yet taken as queued."""
        self._queued_rows += sign * (job.rows - job.taken)
        self._queued_tokens += sign * job.untaken_tokens
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
