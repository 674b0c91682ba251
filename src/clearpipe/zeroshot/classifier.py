"""Zero-shot classifiers: labels chosen at call time, answered in transformers' shape.

`ZeroShotClassifier` embeds texts with a sentence encoder (`embedder.Embedder`, stage 2) and
compares them with embeddings of the label prompts, computed once per label set and template and
kept; `scoring.Similarity` turns the similarities into probabilities (stage 3). An NLI checkpoint
(a sequence classifier with an "entailment" label) becomes an `NliZeroShotClassifier`: every
(text, hypothesis) pair is one row of one `clearpipe.Classifier.logits` call, so the engine batches
them all, and `scoring.nli_scores` reads them as transformers does. Both offer the same methods,
`ZeroShotModel`, which is what front ends drive.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Protocol

import numpy as np

from clearpipe.bases import BASES, find
from clearpipe.classifier import Classifier, load
from clearpipe.errors import CheckpointError, InputError
from clearpipe.loading import load_config, resolve_source
from clearpipe.preprocess import Tokenized
from clearpipe.zeroshot.embedder import Embedder, check_texts, load_embedder, normalize
from clearpipe.zeroshot.labels import CandidateLabels, Label, as_labels, check_template
from clearpipe.zeroshot.scoring import (
    DEFAULT_TEMPLATE,
    MEASURED,
    NLI_TEMPLATE,
    Similarity,
    ZeroShotOutput,
    ZeroShotPredictions,
    nli_scores,
)

CACHED_LABEL_SETS = 256
"""Label sets whose prompt embeddings a classifier keeps (a server sees a few, again and again)."""


class ZeroShotModel(Protocol):
    """What front ends call on either zero-shot classifier (see the module docstring)."""

    @property
    def source(self) -> str: ...

    @property
    def template(self) -> str: ...

    def labels(self, candidate_labels: CandidateLabels) -> list[Label]: ...

    def tokenize(
        self, texts: Sequence[str], labels: Sequence[Label], template: str | None = None
    ) -> Tokenized: ...

    def scores(
        self,
        tokenized: Tokenized,
        labels: Sequence[Label],
        template: str | None = None,
        multi_label: bool = False,
    ) -> np.ndarray: ...

    def forward(self, tokenized: Tokenized) -> np.ndarray: ...

    def postprocess(
        self,
        outputs: np.ndarray,
        labels: Sequence[Label],
        template: str | None = None,
        multi_label: bool = False,
    ) -> np.ndarray: ...

    def predict(
        self,
        texts: Sequence[str],
        candidate_labels: CandidateLabels,
        hypothesis_template: str | None = None,
        multi_label: bool = False,
    ) -> ZeroShotPredictions: ...


class _Calls:
    """The calls both zero-shot classifiers answer the same way, over their own `tokenize`,
    `forward` (stage 2) and `postprocess` (stage 3): `labels`, `scores`, `predict`, `to_output`
    and transformers' `__call__`."""

    def forward(self, tokenized: Tokenized) -> np.ndarray:
        raise NotImplementedError

    def postprocess(
        self,
        outputs: np.ndarray,
        labels: Sequence[Label],
        template: str | None = None,
        multi_label: bool = False,
    ) -> np.ndarray:
        raise NotImplementedError

    def labels(self, candidate_labels: CandidateLabels) -> list[Label]:
        """Candidate labels in any accepted form, checked (see `clearpipe.zeroshot.labels`)."""
        return as_labels(candidate_labels)

    def scores(
        self,
        tokenized: Tokenized,
        labels: Sequence[Label],
        template: str | None = None,
        multi_label: bool = False,
    ) -> np.ndarray:
        """Stages 2-3: probabilities (texts, labels) from `tokenize`'s rows.

        >>> clf.scores(clf.tokenize(["goal!"], labels), labels).shape  # doctest: +SKIP
        (1, 2)
        """
        check_count(labels, multi_label)
        return self.postprocess(self.forward(tokenized), labels, template, multi_label)

    def predict(
        self,
        texts: Sequence[str],
        candidate_labels: CandidateLabels,
        hypothesis_template: str | None = None,
        multi_label: bool = False,
    ) -> ZeroShotPredictions:
        """Scores of every text for every label, in the labels' order (see `ZeroShotPredictions`)."""
        return _predict(self, texts, candidate_labels, hypothesis_template, multi_label)

    def to_output(self, predictions: ZeroShotPredictions) -> list[ZeroShotOutput]:
        """The answer shape of `predictions`, one dict per text."""
        return predictions.to_output()

    def __call__(
        self,
        sequences: str | Sequence[str],
        candidate_labels: CandidateLabels,
        hypothesis_template: str | None = None,
        multi_label: bool = False,
    ) -> ZeroShotOutput | list[ZeroShotOutput]:
        """transformers' zero-shot call: a dict for one text, a list for a list.

        `hypothesis_template` defaults to the classifier's `template` (for similarity,
        clearpipe's measured `DEFAULT_TEMPLATE`).
        """
        return _answer(self, sequences, candidate_labels, hypothesis_template, multi_label)


class ZeroShotClassifier(_Calls):
    """Zero-shot classification by similarity with a sentence encoder; also `embed`.

    >>> clf = clearpipe.pipeline("zero-shot-classification")  # doctest: +SKIP
    >>> clf("The match went to extra time.", candidate_labels=["sports", "politics"])  # doctest: +SKIP
    {'sequence': 'The match went to extra time.', 'labels': ['sports', 'politics'], 'scores': [0.98, 0.02]}
    """

    def __init__(
        self, embedder: Embedder, scoring: Similarity | None = None, template: str = DEFAULT_TEMPLATE
    ):
        self.embedder = embedder
        self.scoring = scoring or Similarity()
        self.template = check_template(template)
        self._prompts: OrderedDict[tuple[str, ...], np.ndarray] = OrderedDict()
        # A server fills the cache on its engine thread and reads it on its event loop.
        self._lock = threading.Lock()

    @property
    def source(self) -> str:
        return self.embedder.source

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Normalized mean-pooled sentence embeddings (texts, hidden), float32.

        >>> clf.embed(["a good film"]).shape  # doctest: +SKIP
        (1, 384)
        """
        return self.embedder.embed(texts)

    def tokenize(
        self, texts: Sequence[str], labels: Sequence[Label], template: str | None = None
    ) -> Tokenized:
        """Stage 1: the texts alone (label prompts are embedded once per label set, not per text)."""
        return self.embedder.tokenize(texts)

    def label_embeddings(
        self, labels: Sequence[Label], template: str | None = None, compute: bool = True
    ) -> np.ndarray | None:
        """Embeddings of the label prompts (labels, hidden), computed once per label set and template
        and kept; with `compute=False`, the kept ones or None (a server asks before it runs the model).

        >>> clf.label_embeddings([Label("sports"), Label("politics")]).shape  # doctest: +SKIP
        (2, 384)
        """
        prompts = tuple(check_template(template or self.template).format(label.prompt) for label in labels)
        with self._lock:
            if prompts in self._prompts:
                self._prompts.move_to_end(prompts)
                return self._prompts[prompts]
        if not compute:
            return None
        vectors = self.embedder.embed(prompts)
        with self._lock:
            self._prompts[prompts] = vectors
            if len(self._prompts) > CACHED_LABEL_SETS:
                self._prompts.popitem(last=False)
        return vectors

    def forward(self, tokenized: Tokenized) -> np.ndarray:
        """Stage 2: the texts' mean-pooled states (texts, hidden), not yet normalized."""
        if not len(tokenized):
            return np.zeros((0, self.embedder.width), dtype=np.float32)
        return self.embedder.pooled(tokenized)

    def postprocess(
        self,
        outputs: np.ndarray,
        labels: Sequence[Label],
        template: str | None = None,
        multi_label: bool = False,
    ) -> np.ndarray:
        """Stage 3: `forward`'s states -> cosines with the label prompts -> probabilities (texts, labels)."""
        prompts = self.label_embeddings(labels, template)  # (L, H), unit rows
        assert prompts is not None
        similarities = normalize(outputs) @ prompts.T  # (N, L) cosines
        described = any(label.description for label in labels)
        return self.scoring.probabilities(similarities, multi_label, described)

    def __repr__(self) -> str:
        return f"ZeroShotClassifier(encoder={self.source!r}, template={self.template!r}, {self.scoring})"


class NliZeroShotClassifier(_Calls):
    """Zero-shot classification with an NLI checkpoint, as transformers runs it, batched.

    >>> clf = clearpipe.pipeline("zero-shot-classification", model="path/to/nli")  # doctest: +SKIP
    """

    template = NLI_TEMPLATE

    def __init__(self, classifier: Classifier, entailment: int):
        self.classifier = classifier
        self.entailment = entailment
        self.contradiction = -1 if entailment == 0 else 0  # as transformers picks it

    @property
    def source(self) -> str:
        return self.classifier.source

    def tokenize(
        self, texts: Sequence[str], labels: Sequence[Label], template: str | None = None
    ) -> Tokenized:
        """Stage 1: one (text, hypothesis) pair per text and label, text-major.

        The classifier's tokenizer truncates the longest side first; transformers cuts only the
        text. They differ only when a hypothesis is longer than what is left of its text.
        """
        fill = check_template(template or self.template)
        pairs = [(text, fill.format(label.prompt)) for text in texts for label in labels]
        return self.classifier.tokenize(pairs)

    def forward(self, tokenized: Tokenized) -> np.ndarray:
        """Stage 2: every pair through the engine at once: logits (texts x labels, classes)."""
        return self.classifier.logits(tokenized)

    def postprocess(
        self,
        outputs: np.ndarray,
        labels: Sequence[Label],
        template: str | None = None,
        multi_label: bool = False,
    ) -> np.ndarray:
        """Stage 3: the pairs' logits -> transformers' probabilities (texts, labels)."""
        per_text = outputs.reshape(-1, len(labels), outputs.shape[-1])  # (N, L, classes)
        return nli_scores(per_text, self.entailment, self.contradiction, multi_label)

    def __repr__(self) -> str:
        return f"NliZeroShotClassifier(source={self.source!r}, entailment={self.entailment})"


def entailment_id(label2id: Mapping[str, int]) -> int | None:
    """The id of an NLI model's entailment label (the first name starting "entail", any case).

    >>> entailment_id({"contradiction": 0, "neutral": 1, "entailment": 2})
    2
    """
    for name, index in label2id.items():
        if str(name).lower().startswith("entail"):
            return int(index)
    return None


def load_zero_shot(
    model: str | os.PathLike[str] | None = None,
    *,
    device: str = "auto",
    dtype: str = "auto",
    max_length: int | None = None,
    max_tokens: int | None = None,
    batch_size: int | None = None,
) -> ZeroShotClassifier | NliZeroShotClassifier:
    """A zero-shot classifier: by similarity with a sentence encoder (default all-MiniLM-L6-v2, or
    a named base such as "mpnet-base", or a folder), or, for an NLI checkpoint, by entailment.

    >>> load_zero_shot().embed(["hello"]).shape  # doctest: +SKIP
    (1, 384)
    """
    if model is not None and str(model) not in BASES:
        source = resolve_source(model)
        config = load_config(source)
        found = entailment_id(config.label2id or {})
        if found is None:
            _refuse_classifier(source, config)
        else:
            nli = load(
                source,
                device=device,
                dtype=dtype,
                max_length=max_length,
                max_tokens=max_tokens,
                batch_size=batch_size,
            )
            return NliZeroShotClassifier(nli, found)
    embedder = load_embedder(
        model, device=device, dtype=dtype, max_length=max_length, max_tokens=max_tokens, batch_size=batch_size
    )
    return ZeroShotClassifier(embedder, scoring_for(embedder.source))


def scoring_for(source: str) -> Similarity:
    """The scoring measured for the named base at `source` (its folder or hub id), else the
    defaults (all-MiniLM-L6-v2's): temperatures depend on how widely an encoder's similarities
    spread.

    >>> scoring_for("sentence-transformers/all-mpnet-base-v2").temperature
    0.046
    """
    for name, scoring in MEASURED.items():
        base = BASES[name]
        if source == base.hub_id:
            return scoring
        folder = find(base).source
        if folder is not None and os.path.realpath(folder) == os.path.realpath(source):
            return scoring
    return Similarity()


def _refuse_classifier(source: str, config) -> None:
    """Refuse a trained text classifier (a classification head with named labels, none of them
    "entailment"): its body was tuned to its own labels, so its similarities mean nothing for
    others. An encoder, or a head never trained (transformers' LABEL_0, LABEL_1 names), passes."""
    heads = [a for a in (config.architectures or []) if a.endswith("ForSequenceClassification")]
    names = [str(name) for name in (config.id2label or {}).values()]
    if heads and any(name != f"LABEL_{i}" for i, name in enumerate(names)):
        raise CheckpointError(
            f"{source} is a text classifier (labels {', '.join(names[:6])}), not a sentence encoder or an "
            "NLI model; zero-shot needs one of those (default: all-MiniLM-L6-v2, with no --model)"
        )


def check_count(labels: Sequence[Label], multi_label: bool) -> None:
    if not multi_label and len(labels) < 2:
        names = ", ".join(repr(label.name) for label in labels)
        raise InputError(
            f"single-label zero-shot needs at least 2 candidate labels to choose between, got {len(labels)} "
            f"({names}); pass multi_label=True to score one label on its own"
        )


def _predict(
    clf: ZeroShotModel,
    texts: Sequence[str],
    candidate_labels: CandidateLabels,
    template: str | None,
    multi_label: bool,
) -> ZeroShotPredictions:
    labels = clf.labels(candidate_labels)
    check_count(labels, multi_label)  # before any work
    check_template(template or clf.template)
    texts = check_texts(texts)
    scores = (
        clf.scores(clf.tokenize(texts, labels, template), labels, template, multi_label) if texts else None
    )
    empty = np.zeros((0, len(labels)))
    return ZeroShotPredictions(texts, labels, empty if scores is None else scores, multi_label)


def _answer(
    clf: ZeroShotModel,
    sequences: str | Sequence[str],
    candidate_labels: CandidateLabels,
    template: str | None,
    multi_label: bool,
) -> ZeroShotOutput | list[ZeroShotOutput]:
    outputs = clf.predict(check_texts(sequences), candidate_labels, template, multi_label).to_output()
    return outputs[0] if isinstance(sequences, str) else outputs
