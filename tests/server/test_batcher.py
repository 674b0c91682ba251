"""The batcher on its own: budgets, deadlines and the one-for-one check."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from clearpipe.preprocess import Tokenized
from clearpipe.server.batcher import Batcher, QueueFull, concat
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
    # The first batch runs for 200 ms; a request queued meanwhile has waited past max_wait when
    # the engine comes free, yet it must not run alone: one arriving 20 ms later joins it.
    def slow(tokenized: Tokenized) -> np.ndarray:
        time.sleep(0.2)
        return echo_lengths(tokenized)

    async def go() -> list[int]:
        batcher = Batcher(slow, ServerConfig(max_wait_ms=50))
        await batcher.start()
        try:
            first = batcher.submit(rows(1))
            await asyncio.sleep(0.12)  # the first batch is running now
            straggler = batcher.submit(rows(2))
            await batcher.result(first)
            await asyncio.sleep(0.02)
            late = batcher.submit(rows(3))
            answers = [await batcher.result(j) for j in (straggler, late)]
            return [a.batch_inputs for a in answers]
        finally:
            await batcher.stop()

    assert asyncio.run(go()) == [2, 2]
