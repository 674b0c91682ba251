"""Integrated Gradients: completeness, special tokens, words, and faithfulness on the default model."""

from __future__ import annotations

import random
import statistics

import pytest
import torch

import clearpipe
from clearpipe.loading import DEFAULT_MODEL_DIR
from clearpipe.preprocess import Tokenized
from clearpipe.trace import attributions
from clearpipe.trace.attributions import TOLERANCE, baseline_token, integrated_gradients

KINDS = ["bert", "distilbert", "roberta"]
TEXT = "the actors were great and the premises naive"


POSITIVE = ["good", "great", "fun", "love", "best", "funny"]
NEGATIVE = ["bad", "awful", "boring", "hate", "worst", "lost"]
TRAIN_STEPS, STEP_SIZE = 60, 2e-3
FILLER = ["the", "film", "movie", "story", "was", "is", "very", "and", "plot", "actors"]


def _toy_sentences(rng: random.Random, n: int) -> tuple[list[str], list[int]]:
    texts, labels = [], []
    for _ in range(n):
        label = rng.randrange(2)
        words = rng.choices(FILLER, k=rng.randint(3, 7))
        words.insert(rng.randrange(len(words) + 1), rng.choice(POSITIVE if label else NEGATIVE))
        texts.append(" ".join(words))
        labels.append(label)
    return texts, labels


@pytest.fixture(scope="module")
def trained(tiny):
    """Factory: a tiny classifier trained for a few seconds to tell POSITIVE words from NEGATIVE ones,
    so that its logits depend on the input and attributions have something to find."""
    cache: dict[str, clearpipe.Classifier] = {}

    def make(kind: str) -> clearpipe.Classifier:
        if kind not in cache:
            clf = clearpipe.load(tiny(kind), device="cpu", dtype="float32")
            model, rng = clf.model, random.Random(0)
            torch.manual_seed(0)
            optimizer = torch.optim.AdamW(model.parameters(), lr=STEP_SIZE)
            threads = torch.get_num_threads()
            torch.set_num_threads(1)  # a 32-wide model: more threads only add overhead
            model.train()
            try:
                for _ in range(TRAIN_STEPS):
                    texts, labels = _toy_sentences(rng, 16)
                    batch = clf.tokenizer(texts, padding=True, return_tensors="pt")
                    model(**batch, labels=torch.tensor(labels)).loss.backward()
                    optimizer.step()
                    optimizer.zero_grad()
            finally:
                model.eval()
                torch.set_num_threads(threads)
            cache[kind] = clf
        return cache[kind]

    return make


@pytest.mark.parametrize("kind", KINDS)
def test_completeness_within_tolerance(trained, kind):
    clf = trained(kind)
    t = clf.trace(TEXT)
    check = t.attributions.completeness
    assert abs(check.delta) > 1.0, "the test needs a model whose logit moves between baseline and input"
    assert check.ok and check.error <= TOLERANCE
    assert sum(t.attributions.scores) == pytest.approx(check.total)
    assert check.total == pytest.approx(check.delta, rel=TOLERANCE)
    # The embeddings path computes the same logit as the classifier's own forward.
    assert check.logit_input == pytest.approx(t.model.logits[t.prediction.label_id], abs=1e-4)
    assert t.attributions.baseline_token == clf.tokenizer.pad_token


@pytest.mark.parametrize("kind", KINDS)
def test_special_tokens_get_nothing_and_every_token_gets_a_score(trained, kind):
    clf = trained(kind)
    t = clf.trace(TEXT, pair="a good film") if kind == "bert" else clf.trace(TEXT)
    tokens = t.tokenizer.tokens
    assert len(t.attributions.scores) == len(tokens)
    assert [tok.attribution for tok in tokens] == t.attributions.scores
    assert all(tok.attribution == 0.0 for tok in tokens if tok.special)
    assert any(abs(tok.attribution) > 1e-4 for tok in tokens if not tok.special)


def test_steps_double_until_the_check_holds(trained, monkeypatch):
    clf = trained("bert")
    enc = clf.collate(clf.tokenize([TEXT]), [0])
    mask = clf.tokenizer.get_special_tokens_mask(enc.input_ids[0].tolist(), already_has_special_tokens=True)
    special, baseline = [bool(m) for m in mask], baseline_token(clf.tokenizer)
    ig = integrated_gradients(clf.model, enc, clf.device, 1, special, baseline, steps=2)
    assert ig.steps > 2 and ig.completeness.ok
    monkeypatch.setattr(attributions, "MAX_STEPS", 8)
    capped = integrated_gradients(clf.model, enc, clf.device, 1, special, baseline, steps=2)
    assert capped.steps == 8 and not capped.completeness.ok  # reported, not hidden


def test_words_reassemble_subwords(trained):
    clf = trained("bert")
    t = clf.trace("premises naive")
    pieces = [tok.token for tok in t.tokenizer.tokens if not tok.special]
    assert pieces == ["premise", "##s", "naive"]
    words = t.attributions.words
    assert [(w.text, w.span, w.tokens) for w in words] == [
        ("premises", (0, 8), [1, 2]),
        ("naive", (9, 14), [3]),
    ]
    scores = t.attributions.scores
    assert words[0].attribution == pytest.approx(scores[1] + scores[2])


# Faithfulness ---------------------------------------------------------------------------------

SENTENCES = 50
RANDOM_DRAWS = 5


def _sst2_sentences(shared_data, n: int) -> list[str]:
    lines = (shared_data / "sst2" / "test.tsv").read_text(encoding="utf-8").splitlines()[1:]
    sentences = [line.split("\t")[0].strip() for line in lines]
    return [s for s in sentences if 6 <= len(s.split()) <= 30][:n]


def _probability_without(clf, trace, drops: list[list[int]]) -> list[float]:
    """The predicted label's probability after deleting each set of token positions."""
    tokens = trace.tokenizer.tokens
    rows = [[tok for tok in tokens if tok.index not in set(drop)] for drop in drops]
    tokenized = Tokenized(
        input_ids=[[tok.id for tok in row] for row in rows],
        token_type_ids=[[tok.type_id for tok in row] for row in rows]
        if tokens[0].type_id is not None
        else None,
        truncated=[False] * len(rows),
    )
    logits = clf.forward(clf.collate(tokenized, range(len(rows))))
    return clf.postprocess(logits).scores[:, trace.prediction.label_id].tolist()


def faithfulness(clf, sentences: list[str], seed: int = 0) -> tuple[float, float, float]:
    """Mean drop of the predicted label's probability when deleting the 2 most-attributed tokens,
    the same for 2 random tokens (averaged over RANDOM_DRAWS draws), and the worst completeness error."""
    rng = random.Random(seed)
    top_drops, random_drops, errors = [], [], []
    for sentence in sentences:
        t = clf.trace(sentence)
        errors.append(t.attributions.completeness.error)
        content = [tok for tok in t.tokenizer.tokens if not tok.special]
        top = [tok.index for tok in sorted(content, key=lambda tok: tok.attribution, reverse=True)[:2]]
        draws = [[tok.index for tok in rng.sample(content, 2)] for _ in range(RANDOM_DRAWS)]
        after = _probability_without(clf, t, [top, *draws])
        top_drops.append(t.prediction.score - after[0])
        random_drops.append(t.prediction.score - statistics.mean(after[1:]))
    return statistics.mean(top_drops), statistics.mean(random_drops), max(errors)


@pytest.mark.slow
@pytest.mark.default_model
def test_deleting_the_most_attributed_tokens_hurts_more_than_random(shared_data):
    if not (DEFAULT_MODEL_DIR / "config.json").is_file():
        pytest.skip(
            f"the embedded default model is not in this checkout ({DEFAULT_MODEL_DIR} has no config.json)"
        )
    sentences = _sst2_sentences(shared_data, SENTENCES)
    assert len(sentences) >= 50
    threads = torch.get_num_threads()
    # Batches of 32 quadrature points x ~20 tokens: on 2 cores shared with other jobs, a second
    # torch thread mostly spins waiting for the first (measured 6x slower under load).
    torch.set_num_threads(1)
    try:
        top, rand, worst_error = faithfulness(clearpipe.load(device="cpu"), sentences)
    finally:
        torch.set_num_threads(threads)
    print(
        f"mean drop: top-2 attributed {top:.4f}, random 2 {rand:.4f}; worst completeness error {worst_error:.2%}"
    )
    assert worst_error <= TOLERANCE
    assert top > 2 * rand and top - rand > 0.05, (top, rand)
