"""Few-shot training by the SetFit method (Tunstall et al., 2022, arXiv:2209.11055).

With a handful of rows per class, fine-tuning a classification head end to end has too little to
learn from. SetFit instead (1) fine-tunes the sentence encoder contrastively on pairs drawn from
the labelled rows (same class: cosine 1, different classes: cosine 0; `iterations` pairs of each
kind per row, one epoch, as SetFit's original sampler and `CosineSimilarityLoss` do), then
(2) fits a logistic-regression head on the normalised mean-pooled embeddings. The result is saved
as a `clearpipe.pooled` classifier, which every clearpipe command loads.

The temperature: SetFit's head is fitted on rows the encoder was tuned on, so its confidence on
those rows says nothing about new ones. Without a validation file, the whole method (encoder and
head) is re-run on `folds` stratified folds and the temperature is fitted on the out-of-fold logits.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from transformers import AutoModel, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from clearpipe.engine import loop
from clearpipe.engine.run import PooledRunner
from clearpipe.errors import InputError
from clearpipe.forward import mean_pool, model_inputs
from clearpipe.loading import quiet_transformers, uses_token_type_ids
from clearpipe.preprocess import Tokenized, collate, tokenize
from clearpipe.training.data import Split

SETFIT_BELOW = 64
"""`--method auto` trains by SetFit when the smallest class has fewer rows than this."""

METHODS = ("auto", "setfit", "finetune")


@dataclass(frozen=True)
class SetFitSettings:
    """SetFit's published defaults, except `folds` (clearpipe's cross-validated temperature)."""

    iterations: int = 20  # positive and negative pairs drawn per row
    batch_size: int = 16  # pairs per optimizer step
    learning_rate: float = 2e-5
    warmup: float = 0.1
    head_c: float = 1.0  # the logistic regression's inverse regularisation
    folds: int = 3
    pieces: int = 4  # forward passes per batch, rows grouped by length (see `pooled_rows`)
    zero_shot_temperature: float = 0.053  # zeroshot.Similarity's, for label names
    bf16: bool = False  # autocast the encoder's forward (fp32 master weights)


@dataclass
class Tuned:
    """A tuned encoder, its training rows' embeddings `x` (N, H) and the label prompts' (L, H)."""

    encoder: PreTrainedModel
    x: np.ndarray
    prompts: np.ndarray | None
    steps: int
    loss: float


def uses_setfit(method: str, labels: Sequence[object], multi_label: bool, teacher: bool = False) -> bool:
    """Whether `clearpipe train --method METHOD` trains this data by SetFit.

    "auto" picks SetFit for single-label data whose smallest class has fewer than `SETFIT_BELOW`
    rows, unless a teacher is given: distillation fine-tunes, and a few rows plus unlabelled texts
    scored by a larger few-shot teacher is how a small model learns most from a few labels
    (docs/FEW_SHOT.md). "setfit" refuses multi-label data (its pairs need one class per row).

    >>> uses_setfit("auto", [0] * 8 + [1] * 8, multi_label=False)
    True
    """
    if method not in METHODS:
        raise InputError(f"--method must be one of {', '.join(METHODS)}, got {method!r}")
    if method == "setfit" and multi_label:
        raise InputError("--method setfit trains single-label data; multi-label data needs --method finetune")
    if method != "auto":
        return method == "setfit"
    if multi_label or teacher:
        return False
    _, counts = np.unique(np.asarray(labels), return_counts=True)
    return int(counts.min()) < SETFIT_BELOW


def sample_pairs(labels: Sequence[int], iterations: int, rng: np.random.Generator) -> np.ndarray:
    """SetFit's pairs: per iteration and row, one row of its class (target 1) and one of another
    (target 0): an (n, 3) array of row, row, target. A class with one row pairs it with itself.

    >>> sample_pairs([0, 0, 1], 1, np.random.default_rng(0)).shape
    (6, 3)
    """
    y = np.asarray(labels)
    by_class = {c: np.flatnonzero(y == c) for c in np.unique(y)}
    others = {c: np.flatnonzero(y != c) for c in by_class}
    pairs = []
    for _ in range(iterations):
        for i, c in enumerate(y):
            pairs.append((i, rng.choice(by_class[c]), 1))
            pairs.append((i, rng.choice(others[c]), 0))
    pairs = np.asarray(pairs, dtype=np.int64)
    return pairs[rng.permutation(len(pairs))]


def load_encoder(source: str) -> tuple[PreTrainedTokenizerBase, PreTrainedModel]:
    """The base as a plain encoder (no head), in float32 for training.

    >>> tokenizer, encoder = load_encoder("path/to/all-MiniLM-L6-v2")  # doctest: +SKIP
    """
    tokenizer = AutoTokenizer.from_pretrained(source)
    with quiet_transformers():
        encoder = AutoModel.from_pretrained(source, dtype=torch.float32, add_pooling_layer=False)
    return tokenizer, encoder


def tune_encoder(
    encoder: PreTrainedModel,
    tokenized: Tokenized,
    labels: Sequence[int],
    pad_id: int,
    settings: SetFitSettings,
    seed: int,
    bf16: bool = False,
) -> tuple[int, float]:
    """Step (1): one epoch of contrastive pairs, `CosineSimilarityLoss` (the squared error of the
    pair's cosine against its target), fp32 master weights under bf16 autocast with `bf16`. Returns the optimizer steps and the last 10 steps' mean loss.

    >>> tune_encoder(encoder, tokenized, [0, 0, 1, 1], 0, SetFitSettings(), seed=42)  # doctest: +SKIP
    (10, 0.04)
    """
    from transformers import get_linear_schedule_with_warmup

    torch.manual_seed(seed)
    pairs = sample_pairs(labels, settings.iterations, np.random.default_rng(seed))
    steps = math.ceil(len(pairs) / settings.batch_size)
    # fused: one kernel over all parameters per step, on the CPU too (the per-tensor loop took
    # 5% of a MiniLM step)
    optimizer = torch.optim.AdamW(encoder.parameters(), lr=settings.learning_rate, fused=True)
    schedule = get_linear_schedule_with_warmup(optimizer, int(steps * settings.warmup), steps)
    device = encoder.device
    encoder.train()
    losses = []
    for start in range(0, len(pairs), settings.batch_size):
        batch = pairs[start : start + settings.batch_size]  # (b, 3)
        rows = np.concatenate([batch[:, 0], batch[:, 1]])  # both sides of every pair
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            pooled = pooled_rows(encoder, tokenized, rows, pad_id, settings.pieces)
        a, b = pooled.float().chunk(2)  # (b, H) each
        target = torch.as_tensor(batch[:, 2], dtype=torch.float32, device=device)
        loss = torch.nn.functional.mse_loss(torch.cosine_similarity(a, b), target)
        loss.backward()
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
    encoder.eval()
    return steps, float(np.mean(losses[-10:]))


def pooled_rows(
    encoder: PreTrainedModel, tokenized: Tokenized, rows: np.ndarray, pad_id: int, pieces: int
) -> torch.Tensor:
    """Mean-pooled embeddings (len(rows), H) of `rows`, in their order, with gradients: the rows
    sorted by length and run in `pieces` forward passes, each padded to its own longest row. A
    row's embedding does not depend on its padding, so the batch, its loss and its gradient are
    SetFit's; only the padding goes. In one pass, padding to the longest of 32 AG News rows
    (mean 45 tokens, longest 94) was half of every step; 4 passes cost a third less.

    >>> pooled_rows(encoder, tokenized, np.array([3, 0, 2]), 0, 2).shape  # doctest: +SKIP
    torch.Size([3, 384])
    """
    order = np.argsort([len(tokenized.input_ids[row]) for row in rows], kind="stable")
    parts = [part for part in np.array_split(order, min(pieces, len(order))) if len(part)]
    pooled = torch.cat(
        [_pooled(encoder, collate(tokenized, rows[part], pad_id), encoder.device) for part in parts]
    )
    back = np.empty_like(order)
    back[order] = np.arange(len(order))  # position of each row in the sorted order
    return pooled[torch.as_tensor(back, device=pooled.device)]


def _pooled(encoder: PreTrainedModel, encoded, device: torch.device) -> torch.Tensor:
    inputs = model_inputs(encoded, device)
    states = encoder(**inputs).last_hidden_state  # (B, T, H)
    return mean_pool(states, inputs["attention_mask"])


def embed(encoder: PreTrainedModel, tokenized: Tokenized, pad_id: int, side: str) -> np.ndarray:
    """Normalised mean-pooled embeddings (N, H) through the engine's loop, as the saved model
    computes them.

    >>> embed(encoder, tokenized, 0, "right").shape  # doctest: +SKIP
    (32, 384)
    """
    runner = PooledRunner(encoder, encoder.device, (-1,), pad_id, side)
    pooled = loop.run(tokenized, runner, loop.Budget(8192))
    return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)


def fit_head(
    x: np.ndarray, y: Sequence[int], num_labels: int, c: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Step (2): scikit-learn's logistic regression on the embeddings, as one linear layer whose
    softmax equals its `predict_proba`: weight (labels, hidden), bias (labels,). A binary model's
    one weight row becomes two, [0, w], since softmax([0, z]) = sigmoid(z).

    >>> w, b = fit_head(x, [0, 1, 1, 0], 2, 1.0, 42); w.shape  # doctest: +SKIP
    (2, 384)
    """
    from sklearn.linear_model import LogisticRegression

    y = np.asarray(y)
    head = LogisticRegression(C=c, max_iter=2000, random_state=seed).fit(x, y)
    weight = np.zeros((num_labels, x.shape[1]))
    bias = np.zeros(num_labels)
    if len(head.classes_) == 2:
        weight[head.classes_[1]], bias[head.classes_[1]] = head.coef_[0], head.intercept_[0]
        weight[head.classes_[0]] = 0.0
    else:
        weight[head.classes_] = head.coef_
        bias[head.classes_] = head.intercept_
        # a class absent from these rows (a fold) never wins: its logit sits far below the rest
        absent = np.setdiff1d(np.arange(num_labels), head.classes_)
        bias[absent] = -1e4
    return weight, bias


def fit_head_from_names(
    x: np.ndarray, y: Sequence[int], prompts: np.ndarray, temperature: float, c: float
) -> tuple[np.ndarray, np.ndarray]:
    """Step (2) started from the label names: a softmax regression whose weights are pulled
    toward the zero-shot head (each label's prompt embedding / the zero-shot temperature, whose
    logits are zero-shot's) instead of toward zero, i.e. the most probable head under a Gaussian
    prior centred on zero-shot: minimise NLL + ||W - W0||^2 / 2c. Small `c` stays near zero-shot.

    >>> w, b = fit_head_from_names(x, [0, 1], prompts, 0.053, 0.1); w.shape  # doctest: +SKIP
    (2, 384)
    """
    from scipy.optimize import minimize

    labels, hidden = prompts.shape
    start = prompts / temperature  # (L, H): zero-shot's logits are x @ start.T
    onehot = np.eye(labels)[np.asarray(y)]  # (N, L)

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        weight, bias = theta[: labels * hidden].reshape(labels, hidden), theta[labels * hidden :]
        z = x @ weight.T + bias
        z = z - z.max(1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(1, keepdims=True)
        pull = weight - start
        value = -np.sum(onehot * np.log(p + 1e-300)) + np.sum(pull * pull) / (2 * c)
        grad = np.concatenate([((p - onehot).T @ x + pull / c).ravel(), (p - onehot).sum(0)])
        return value, grad

    found = minimize(loss, np.concatenate([start.ravel(), np.zeros(labels)]), jac=True, method="L-BFGS-B")
    return found.x[: labels * hidden].reshape(labels, hidden), found.x[labels * hidden :]


HEADS: tuple[float | None, ...] = (None, 0.1, 1.0, 10.0, 100.0, 1000.0)
"""The heads compared on held-out logits: None, SetFit's plain logistic regression (C = 1); a
number c, `fit_head_from_names` with that pull toward zero-shot (label names that say what the
class is: SST-2's "negative"/"positive" gained 10 points at 8 rows per class; AG News's lost 5).
The weak pulls (100, 1000) were added when every head was scored on test
(`benchmarks/few_shot_heads.py`, 8 rows per class, 5 seeds): AG News's choice rose from 81.8% to
82.4%, SST-2's stayed at 71.5%."""


def heads(tuned: Tuned, y: Sequence[int], num_labels: int, settings: SetFitSettings, seed: int) -> dict:
    """Every candidate head (see `HEADS`) fitted on the tuned encoder's training embeddings:
    {candidate: (weight, bias)}; only the plain one without label prompts.

    >>> sorted(heads(tuned, labels, 2, SetFitSettings(), 42), key=str)  # doctest: +SKIP
    [0.1, 1.0, 10.0, 100.0, 1000.0, None]
    """
    fitted = {None: fit_head(tuned.x, y, num_labels, settings.head_c, seed)}
    if tuned.prompts is not None:
        for c in HEADS[1:]:
            fitted[c] = fit_head_from_names(tuned.x, y, tuned.prompts, settings.zero_shot_temperature, c)
    return fitted


def train_split(
    source: str,
    split: Split,
    names: Sequence[str] | None,
    max_length: int,
    settings: SetFitSettings,
    seed: int,
) -> Tuned:
    """Step (1) on one split from the base at `source`, with the training rows' embeddings and,
    given label `names`, the label prompts' (zero-shot's template) under the tuned encoder.

    >>> tuned = train_split("path/to/base", data.train, ["neg", "pos"], 128, SetFitSettings(), 42)  # doctest: +SKIP
    """
    from clearpipe.zeroshot.scoring import DEFAULT_TEMPLATE

    tokenizer, encoder = load_encoder(source)
    pad_id, side = tokenizer.pad_token_id or 0, tokenizer.padding_side
    use_types = uses_token_type_ids(encoder, tokenizer)
    tokenized = tokenize(tokenizer, split.items, max_length, use_types)
    steps, loss = tune_encoder(encoder, tokenized, split.labels, pad_id, settings, seed, settings.bf16)
    x = embed(encoder, tokenized, pad_id, side)
    prompts = None
    if names is not None:
        filled = [DEFAULT_TEMPLATE.format(name) for name in names]
        prompts = embed(encoder, tokenize(tokenizer, filled, max_length, use_types), pad_id, side)
    return Tuned(encoder, x, prompts, steps, loss)


def fold_count(labels: Sequence[int], settings: SetFitSettings) -> int:
    """How many stratified folds the cross-validated temperature uses: `settings.folds`, or fewer
    when a class has fewer rows (each fold must hold one row of every class).

    >>> fold_count([0, 0, 1, 1, 1], SetFitSettings())
    2
    """
    return min(settings.folds, int(np.unique(np.asarray(labels), return_counts=True)[1].min()))


@dataclass
class Fold:
    """One cross-validation fold: the rows it trained on (`kept`) and held out (`held`), its tuned
    encoder, and the held-out rows' embeddings under it (len(held), H)."""

    kept: np.ndarray
    held: np.ndarray
    tuned: Tuned
    x_held: np.ndarray


def folds(
    source: str,
    split: Split,
    names: Sequence[str] | None,
    max_length: int,
    settings: SetFitSettings,
    seed: int,
) -> Iterator[Fold]:
    """SetFit models trained without each stratified fold's rows, one fold at a time.

    >>> [len(f.held) for f in folds("path/to/base", data.train, None, 128, SetFitSettings(), 42)]  # doctest: +SKIP
    [11, 11, 10]
    """
    from sklearn.model_selection import StratifiedKFold

    y = np.asarray(split.labels)
    count = fold_count(y, settings)
    if count < 2:
        raise InputError("a cross-validated temperature needs 2 rows or more in every class")
    cut = StratifiedKFold(count, shuffle=True, random_state=seed)
    tokenizer = AutoTokenizer.from_pretrained(source)
    for k, (kept, held) in enumerate(cut.split(np.zeros(len(y)), y)):
        started = time.monotonic()
        tuned = train_split(source, split.subset(kept, "fold"), names, max_length, settings, seed + k)
        items = [split.items[i] for i in held]
        tokenized = tokenize(tokenizer, items, max_length, uses_token_type_ids(tuned.encoder, tokenizer))
        x = embed(tuned.encoder, tokenized, tokenizer.pad_token_id or 0, tokenizer.padding_side)
        print(
            f"fold {k + 1}/{count}: {len(held)} rows held out, {time.monotonic() - started:.0f} s", flush=True
        )
        yield Fold(kept, held, tuned, x)


def held_out_logits(
    source: str,
    split: Split,
    names: Sequence[str] | None,
    max_length: int,
    settings: SetFitSettings,
    seed: int,
) -> dict:
    """Each row's logits from SetFit models trained without it (stratified folds), for every
    candidate head: {candidate: (N, labels)}.

    >>> held_out_logits("path/to/base", data.train, None, 128, SetFitSettings(), 42)[None].shape  # doctest: +SKIP
    (32, 4)
    """
    y = np.asarray(split.labels)
    num_labels = len(names) if names is not None else int(y.max()) + 1
    return out_of_fold(folds(source, split, names, max_length, settings, seed), y, num_labels, settings, seed)


def out_of_fold(
    trained: Iterable[Fold], y: np.ndarray, num_labels: int, settings: SetFitSettings, seed: int
) -> dict:
    """Every candidate head fitted on each fold's kept rows and applied to its held-out rows:
    {candidate: (N, labels)}, each row's logits from the fold that never saw it.

    >>> out_of_fold(folds(...), np.array(labels), 4, SetFitSettings(), 42)[None].shape  # doctest: +SKIP
    (32, 4)
    """
    logits: dict = {}
    for fold in trained:
        for candidate, (weight, bias) in heads(fold.tuned, y[fold.kept], num_labels, settings, seed).items():
            logits.setdefault(candidate, np.zeros((len(y), num_labels)))[fold.held] = (
                fold.x_held @ weight.T + bias
            )
    return logits
