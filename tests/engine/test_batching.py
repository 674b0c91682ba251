"""The batching engine: token-budget batches, order restoration, dtypes and thread settings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import clearpipe
import clearpipe.tokens
from clearpipe.engine import batching as engine
from clearpipe.engine import cpu, loop, precision
from clearpipe.engine import int8 as int8_kernels
from clearpipe.errors import InputError
from clearpipe.preprocess import Tokenized
from devices import GPUS

TEXTS = [
    "the film was good",
    "bad",
    "the actors were really great and the story was fun, the best movie ever",
    "not good at all",
    "a very very very boring plot with awful scenes and bad actors, I hated it so much",
    "love",
    "it is quite funny",
]


@pytest.fixture(scope="module")
def bert_dir(tiny):
    return tiny("bert", 2)


@given(
    lengths=st.lists(st.integers(min_value=1, max_value=64), max_size=60),
    max_tokens=st.integers(min_value=1, max_value=300),
    max_rows=st.one_of(st.none(), st.integers(min_value=1, max_value=8)),
)
@settings(max_examples=200, deadline=None)
def test_token_budget_batches_cover_every_row_once_within_budget(lengths, max_tokens, max_rows):
    batches = list(engine.token_budget_batches(lengths, max_tokens, max_rows))
    assert sorted(r for b in batches for r in b) == list(range(len(lengths)))
    for batch in batches:
        width = max(lengths[r] for r in batch)
        # A row longer than the budget is alone; otherwise the padded batch fits the budget.
        assert len(batch) == 1 or len(batch) * width <= max_tokens
        assert max_rows is None or len(batch) <= max_rows
    # Longest first: batches never get longer rows than earlier ones.
    widths = [max(lengths[r] for r in b) for b in batches]
    assert widths == sorted(widths, reverse=True)


def test_token_budget_batches_pack_short_rows_densely():
    lengths = [4] * 100 + [60] * 4
    batches = list(engine.token_budget_batches(lengths, max_tokens=240))
    assert [len(b) for b in batches] == [4] + [60] * 1 + [40]
    assert batches[0] == [100, 101, 102, 103]  # the long rows, in input order among equals


def _fake_tokenized(lengths: list[int]) -> Tokenized:
    return Tokenized([[7] * n for n in lengths], None, [False] * len(lengths))


class _LengthRunner:
    """A runner whose outputs show which row landed where: its real length, then per token."""

    width = 2

    def __init__(self, per_token: bool = False) -> None:
        self.shapes: list[tuple[int, int]] = []
        self.per_token = per_token

    def outputs(self, tok, rows):
        padded = clearpipe.tokens.pad(tok, rows, pad_token_id=0)
        self.shapes.append(padded.input_ids.shape)
        real = padded.attention_mask.sum(axis=1).astype(np.float32)  # (B,)
        if self.per_token:  # (B, T, 2): each token's position and its row's length
            positions = np.broadcast_to(np.arange(padded.input_ids.shape[1]), padded.input_ids.shape)
            return np.stack([positions, np.broadcast_to(real[:, None], positions.shape)], axis=-1)
        return np.stack([real, -real], axis=1)


def test_the_loop_restores_input_order_and_pads_per_batch():
    lengths = [5, 17, 2, 9, 9, 30, 1, 12]
    runner = _LengthRunner()
    logits = loop.run(_fake_tokenized(lengths), runner, loop.Budget(max_tokens=40))
    assert logits[:, 0].tolist() == lengths
    assert all(rows * width <= 40 or rows == 1 for rows, width in runner.shapes)
    assert sum(rows for rows, _ in runner.shapes) == len(lengths)
    assert loop.run(_fake_tokenized([]), runner, loop.Budget(40)).shape == (0, 2)


def test_the_loop_runs_only_the_rows_asked_for_in_their_order():
    lengths = [5, 17, 2, 9]
    got = loop.run(_fake_tokenized(lengths), _LengthRunner(), loop.Budget(8, batch_size=1), rows=[3, 0, 1])
    assert got[:, 0].tolist() == [9, 5, 17]


def test_per_token_outputs_come_back_one_array_per_row_cut_to_its_length():
    lengths = [5, 17, 2, 9]
    got = loop.run_tokens(_fake_tokenized(lengths), _LengthRunner(per_token=True), loop.Budget(max_tokens=30))
    assert [a.shape for a in got] == [(n, 2) for n in lengths]
    for n, per_token in zip(lengths, got, strict=True):
        assert per_token[:, 0].tolist() == list(range(n)) and set(per_token[:, 1].tolist()) == {n}


def test_close_calls_rerun_on_the_referees_runner_only():
    class Flat(_LengthRunner):  # every logit gap 0: every row a close call for a positive margin
        def outputs(self, tok, rows):
            return np.zeros((len(rows), 2), dtype=np.float32) + 0.5

    tokenized = _fake_tokenized([3, 4, 5])
    referee = loop.Referee(_LengthRunner(), "float32", margin=0.1)
    assert loop.run(tokenized, Flat(), loop.Budget(40), referee)[:, 0].tolist() == [3, 4, 5]
    apart = loop.Referee(_LengthRunner(), "float32", margin=0.0)  # nothing is closer than 0
    assert loop.run(tokenized, Flat(), loop.Budget(40), apart)[:, 0].tolist() == [0.5] * 3


def test_batched_results_equal_one_at_a_time_and_transformers(bert_dir):
    from transformers import pipeline

    batched = clearpipe.load(bert_dir, dtype="float32", max_tokens=24)(TEXTS, top_k=None)
    single = clearpipe.load(bert_dir, dtype="float32", batch_size=1)
    oracle = pipeline("text-classification", model=str(bert_dir), top_k=None)
    for text, got, expected in zip(TEXTS, batched, oracle(TEXTS), strict=True):
        alone = single(text, top_k=None)
        assert [r["label"] for r in got] == [r["label"] for r in alone]
        assert [r["score"] for r in got] == pytest.approx([r["score"] for r in alone], abs=1e-6)
        assert {r["label"]: r["score"] for r in got} == pytest.approx(
            {r["label"]: r["score"] for r in expected}, abs=1e-5
        )


def test_auto_dtype_follows_the_cpu_flags(monkeypatch):
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)
    assert precision.resolve_dtype("auto", torch.device("cpu")) == "bfloat16"
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: False)
    assert precision.resolve_dtype("auto", torch.device("cpu")) == "float32"
    assert precision.resolve_dtype("float16", torch.device("cpu")) == "float16"


class _Gpu:
    """`torch.cuda.is_bf16_supported` of a GPU: every GPU emulates bf16, some compute it."""

    def __init__(self, native: bool) -> None:
        self.native = native

    def is_bf16_supported(self, including_emulation: bool = True) -> bool:
        return self.native or including_emulation


@pytest.mark.parametrize(("native", "expected"), [(True, "bfloat16"), (False, "float32")])
def test_auto_dtype_on_cuda_is_bf16_only_where_the_gpu_computes_it(monkeypatch, native, expected):
    # Emulated bf16 (before Ampere) is slower than fp32.
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", _Gpu(native).is_bf16_supported)
    assert precision.resolve_dtype("auto", torch.device("cuda")) == expected
    assert precision.resolve_dtype("float16", torch.device("cuda:1")) == "float16"
    with pytest.raises(InputError, match=r"int8 .* runs on the CPU only"):
        precision.resolve_dtype("int8", torch.device("cuda"))


@pytest.mark.parametrize("device", GPUS)
def test_the_default_dtype_on_the_gpu_gives_the_cpus_float32_scores(tiny, device):
    folder = tiny("bert", 3)
    on_gpu = clearpipe.load(folder, device=device)
    assert on_gpu.settings.dtype == precision.resolve_dtype("auto", torch.device(device))
    assert on_gpu.settings.max_tokens == engine.DEFAULT_MAX_TOKENS[torch.device(device).type]
    texts = ["a good film", "bad", "", "a long and winding story " * 30]
    reference = clearpipe.load(folder, device="cpu", dtype="float32")
    for g, c in zip(on_gpu(texts, top_k=None), reference(texts, top_k=None), strict=True):
        scores = {r["label"]: r["score"] for r in c}
        assert {r["label"]: r["score"] for r in g} == pytest.approx(scores, abs=0.02)


def test_cpu_flags_are_read_from_proc_cpuinfo():
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.is_file():
        pytest.skip("no /proc/cpuinfo here")
    flags = cpuinfo.read_text()
    cpu.flags.cache_clear()
    assert precision.cpu_has_native_bf16() == ("avx512_bf16" in flags or "amx_bf16" in flags)


def test_dtypes_load_and_stay_close_to_float32(bert_dir):
    reference = clearpipe.load(bert_dir, dtype="float32").predict(TEXTS).scores
    for dtype in ("bfloat16", "int8"):
        clf = clearpipe.load(bert_dir, dtype=dtype)
        assert clf.settings.dtype == dtype
        assert np.abs(clf.predict(TEXTS).scores - reference).max() < 0.05
    bf16 = clearpipe.load(bert_dir, dtype="bfloat16")
    assert next(bf16.model.parameters()).dtype == torch.bfloat16
    int8 = clearpipe.load(bert_dir, dtype="int8")
    query = int8.model.bert.encoder.layer[0].attention.self.query
    if int8_kernels.available():
        assert isinstance(query, int8_kernels.Int8Linear)
    else:  # builds without oneDNN fall back to PyTorch's dynamic quantization
        assert query.weight().dtype == torch.qint8


@pytest.mark.parametrize(
    "option",
    [{"dtype": "int4"}, {"max_tokens": 0}, {"long_text": "split"}, {"aggregate": "median"}, {"threads": 0}],
)
def test_bad_speed_options_are_refused(bert_dir, option):
    with pytest.raises(InputError):
        clearpipe.load(bert_dir, **option)


def test_warmup_and_threads(bert_dir):
    before = torch.get_num_threads()
    try:
        clf = clearpipe.load(bert_dir, threads=1)
        assert torch.get_num_threads() == 1
        clf.warmup()
    finally:
        torch.set_num_threads(before)
