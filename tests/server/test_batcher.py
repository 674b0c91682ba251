"""The batcher on its own: budgets, deadlines, fair shares, per-request limits and the one-for-one check."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

from clearpipe.preprocess import Tokenized
from clearpipe.server.batcher import Batcher, QueueFull, Timeout, TooLarge, concat
from clearpipe.server.config import ServerConfig


def rows(*lengths: int) -> Tokenized:
    return Tokenized([[7] * n for n in lengths], None, [False] * len(lengths))


def echo_lengths(tokenized: Tokenized) -> np.ndarray:
    # logits (rows, 2): each row's length and its batch's size, to see who ran with whom.
    return np.array([[len(ids), len(tokenized)] for ids in tokenized.input_ids], dtype=np.float32)


async def _run(config: ServerConfig, requests: list[Tokenized], run=echo_lengths):
    batcher = Batcher(run, config)
    await batcher.start()
    try:
        jobs = [batcher.submit(t) for t in requests]
        return await asyncio.gather(*(batcher.result(j) for j in jobs), return_exceptions=True)
    finally:
        await batcher.stop()


def test_requests_share_a_batch_and_get_their_own_rows():
    answers = asyncio.run(_run(ServerConfig(max_wait_ms=50), [rows(3), rows(5, 2), rows(4)]))
    assert [a.logits[:, 0].tolist() for a in answers] == [[3], [5, 2], [4]]
    assert {a.batch_inputs for a in answers} == {4}


def test_token_budget_splits_batches():
    answers = asyncio.run(_run(ServerConfig(max_wait_ms=50, max_batch_tokens=8), [rows(5), rows(3), rows(4)]))
    assert [a.batch_inputs for a in answers] == [2, 2, 1]


def test_a_wrong_row_count_fails_that_batch_only():
    def one_short(tokenized: Tokenized) -> np.ndarray:
        return np.zeros((len(tokenized) - 1, 2), dtype=np.float32)

    answers = asyncio.run(_run(ServerConfig(), [rows(3, 4)], run=one_short))
    assert isinstance(answers[0], RuntimeError)
    assert "for 2 inputs" in str(answers[0])


def test_a_failing_request_does_not_fail_its_batch_mates():
    def fails_on_long_rows(tokenized: Tokenized) -> np.ndarray:
        if max(tokenized.lengths) > 9:
            raise IndexError("index out of range in self")
        return echo_lengths(tokenized)

    answers = asyncio.run(
        _run(ServerConfig(max_wait_ms=50), [rows(3), rows(12, 2), rows(4)], run=fails_on_long_rows)
    )
    assert isinstance(answers[1], IndexError)
    assert [answers[0].logits[0, 0], answers[2].logits[0, 0]] == [3, 4]


def test_queue_limit_counts_inputs():
    async def go() -> None:
        batcher = Batcher(echo_lengths, ServerConfig(max_queue=3, max_wait_ms=1000))
        await batcher.start()
        batcher.submit(rows(1, 1))
        with pytest.raises(QueueFull):
            batcher.submit(rows(1, 1))
        batcher.submit(rows(1))
        assert batcher.queued_inputs == 3
        await batcher.stop()

    asyncio.run(go())


def test_concat_keeps_order_and_token_types():
    a = Tokenized([[1, 2]], [[0, 0]], [False])
    b = Tokenized([[3], [4, 5, 6]], [[0], [0, 1, 1]], [True, False])
    merged = concat([a, b])
    assert merged.input_ids == [[1, 2], [3], [4, 5, 6]]
    assert merged.token_type_ids == [[0, 0], [0], [0, 1, 1]]
    assert merged.truncated == [False, True, False]


def test_requests_that_waited_out_a_busy_engine_wait_for_the_next_arrivals():
    # A request queued while a batch runs has waited past max_wait when the engine comes free,
    # yet it must not run alone: one arriving right after the engine came free joins it. The
    # engine is held by the test, not by a sleep, so no step depends on the machine's speed.
    entered, release = threading.Event(), threading.Event()

    def held(tokenized: Tokenized) -> np.ndarray:
        entered.set()
        release.wait(30)
        return echo_lengths(tokenized)

    async def go() -> list[int]:
        # The held batch looks slow; a high target keeps that from shrinking the next batch.
        config = ServerConfig(max_wait_ms=300, target_batch_ms=60_000)
        batcher = Batcher(held, config)
        await batcher.start()
        try:
            first = batcher.submit(rows(1))
            await asyncio.to_thread(entered.wait, 30)  # the first batch is in the engine
            straggler = batcher.submit(rows(2))
            await asyncio.sleep(config.max_wait_s * 1.5)  # it has waited past max_wait
            release.set()
            await batcher.result(first)
            late = batcher.submit(rows(3))
            answers = [await batcher.result(j) for j in (straggler, late)]
            return [a.batch_inputs for a in answers]
        finally:
            release.set()
            await batcher.stop()

    assert asyncio.run(go()) == [2, 2]


def numbered(first: int, count: int, length: int = 2) -> Tokenized:
    """`count` rows of `length` tokens whose first token numbers them from `first`."""
    return Tokenized([[first + i] + [7] * (length - 1) for i in range(count)], None, [False] * count)


def test_a_request_over_the_budget_is_split_and_every_other_request_rides_in_its_first_batch():
    batches: list[list[int]] = []

    def record(tokenized: Tokenized) -> np.ndarray:
        batches.append([ids[0] for ids in tokenized.input_ids])
        return np.array([[ids[0], 0] for ids in tokenized.input_ids], dtype=np.float32)

    big = numbered(1000, 20)  # 40 tokens, five batches' worth
    small = [numbered(10 * k, 1) for k in range(1, 4)]
    answers = asyncio.run(_run(ServerConfig(max_batch_tokens=8), [big, *small], run=record))
    assert answers[0].logits[:, 0].tolist() == list(range(1000, 1020))  # in order, all there
    assert [a.logits[0, 0] for a in answers[1:]] == [10, 20, 30]
    assert sorted(batches[0]) == [10, 20, 30, 1000]  # round-robin: one row of each request
    assert [len(batch) for batch in batches] == [4, 4, 4, 4, 4, 3]  # 8-token budget, 23 rows
    assert answers[0].batch_inputs == 4


def test_a_request_over_the_per_request_limit_is_refused_before_it_is_queued():
    async def go() -> None:
        batcher = Batcher(echo_lengths, ServerConfig(max_request_tokens=10, max_queue=4))
        await batcher.start()
        try:
            with pytest.raises(TooLarge, match=r"11 tokens .* limit of 10 tokens .*max_request_tokens"):
                batcher.submit(rows(6, 5))
            with pytest.raises(TooLarge, match=r"5 rows .*max_queue 4"):
                batcher.submit(rows(1, 1, 1, 1, 1))
            assert batcher.queued_inputs == 0
            assert (await batcher.result(batcher.submit(rows(5, 5)))).logits.shape == (2, 2)
        finally:
            await batcher.stop()

    asyncio.run(go())


def test_a_request_past_its_deadline_runs_no_more_batches():
    calls: list[float] = []

    def slow(tokenized: Tokenized) -> np.ndarray:
        calls.append(time.monotonic())
        time.sleep(0.05)
        return echo_lengths(tokenized)

    async def go() -> tuple[int, int]:
        # One row per batch: the request needs 200 batches, far more than its 0.3 s allow.
        batcher = Batcher(slow, ServerConfig(max_batch_tokens=1, timeout_s=0.3))
        await batcher.start()
        try:
            with pytest.raises(Timeout):
                await batcher.result(batcher.submit(rows(*[1] * 200)))
            at_timeout = len(calls)
            assert batcher.queued_inputs == 0
            await asyncio.sleep(0.5)  # ten batches' time, had it kept going
            return at_timeout, len(calls)
        finally:
            await batcher.stop()

    at_timeout, later = asyncio.run(go())
    assert at_timeout < 200
    assert later <= at_timeout + 1  # at most the batch already in the engine


def test_a_cancelled_wait_takes_its_rows_out_of_the_queue():
    # What a shutdown past its drain time does to the requests still waiting.
    async def go() -> int:
        batcher = Batcher(echo_lengths, ServerConfig(max_wait_ms=10_000))
        await batcher.start()
        try:
            waiting = asyncio.ensure_future(batcher.result(batcher.submit(rows(1, 2, 3))))
            await asyncio.sleep(0)
            waiting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiting
            return batcher.queued_inputs
        finally:
            await batcher.stop()

    assert asyncio.run(go()) == 0


def test_a_split_request_whose_rows_break_the_engine_fails_alone_and_leaves_the_queue():
    def fails_on_long_rows(tokenized: Tokenized) -> np.ndarray:
        if max(tokenized.lengths, default=0) > 9:
            raise IndexError("index out of range in self")
        return echo_lengths(tokenized)

    async def go() -> list[object]:
        batcher = Batcher(fails_on_long_rows, ServerConfig(max_batch_tokens=16))
        await batcher.start()
        try:
            bad = batcher.submit(rows(12, 3, 3, 3, 3, 3, 3, 3, 3))
            good = batcher.submit(rows(4))
            answers = await asyncio.gather(batcher.result(bad), batcher.result(good), return_exceptions=True)
            assert batcher.queued_inputs == 0
            return answers
        finally:
            await batcher.stop()

    bad, good = asyncio.run(go())
    assert isinstance(bad, IndexError)
    assert good.logits[:, 0].tolist() == [4]


def test_batches_shrink_to_the_tokens_the_engine_runs_in_the_target_time():
    tokens_per_batch: list[int] = []

    def a_millisecond_per_token(tokenized: Tokenized) -> np.ndarray:
        tokens_per_batch.append(sum(tokenized.lengths))
        time.sleep(0.001 * tokens_per_batch[-1])  # at least; more on a loaded machine
        return echo_lengths(tokenized)

    config = ServerConfig(max_batch_tokens=100, target_batch_ms=20)
    answers = asyncio.run(_run(config, [rows(*[2] * 100)], run=a_millisecond_per_token))
    assert answers[0].logits.shape == (100, 2)
    assert tokens_per_batch[0] == 100  # nothing measured yet: the token budget
    # Then the 20 tokens that take 20 ms, or fewer on a busy machine, down to an eighth of 100.
    assert all(12 <= tokens <= 20 for tokens in tokens_per_batch[1:-1]), tokens_per_batch
    assert tokens_per_batch[-1] <= 20


def test_the_first_row_of_every_request_goes_in_whatever_the_time_budget():
    # One-sentence requests batch as they always did, even where the engine looks slow.
    tokens_per_batch: list[int] = []

    def slow(tokenized: Tokenized) -> np.ndarray:
        tokens_per_batch.append(sum(tokenized.lengths))
        time.sleep(0.05)
        return echo_lengths(tokenized)

    async def go() -> None:
        batcher = Batcher(slow, ServerConfig(max_batch_tokens=1000, target_batch_ms=1))
        await batcher.start()
        try:
            await batcher.result(batcher.submit(rows(2)))  # 25 ms per token: the time budget is 125
            answers = [batcher.result(batcher.submit(rows(2, 2))) for _ in range(100)]
            await asyncio.gather(*answers)
        finally:
            await batcher.stop()

    asyncio.run(go())
    assert tokens_per_batch[1] == 200  # every first row; no second one, over the time budget of 125
