"""Temperature scaling (Guo et al., 2017): one number T, fitted on held-out labelled data, that
divides a softmax model's logits so that its scores mean what they say.

T minimizes the negative log-likelihood (NLL) of the held-out labels under softmax(logits / T).
A positive T never changes which label is best, only how sure the model says it is, so
accuracy and every label stay exactly as they were. The fit is scipy's bounded 1-D search over
log T (the NLL is convex in 1/T: one minimum).

One variant, kept only when it predicts unseen rows better: a margin temperature (see
`clearpipe.postprocess.Temperature`) whose second parameter, a power, lets confidence grow
faster or slower with the gap between a row's two best logits. It still divides each row by one
positive number, so labels never change either. With `method="auto"` (the default) both are
fitted on `FOLDS` folds of the data and scored on the fold left out; the margin temperature is
chosen only if its held-out NLL is lower by more than `MIN_GAIN` and its fit on all rows stops
inside its bounds: a fit that runs into a bound is extrapolating a shape the rows cannot pin
down, and on SST-2 such a fit (T 20, power 2.86, on 800 held-out sentences) was less calibrated
on unseen sentences than one plain temperature (test ECE 4.6% against 2.6%). A per-class bias (Platt
scaling) would fit more, but it moves the decision boundary and so changes labels.

`clearpipe train` fits on its validation split, `clearpipe calibrate` on any labelled file; both
save the result in config.json under `clearpipe_calibration`, which `clearpipe.postprocess`
applies at prediction time and plain `transformers.pipeline` ignores.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from clearpipe.classifier import Classifier
from clearpipe.errors import InputError
from clearpipe.postprocess import (
    CALIBRATION_KEY,
    TEMPERATURE_BOUNDS,
    Activation,
    Temperature,
    activate,
    default_activation,
    is_multi_label,
)
from clearpipe.training.data import Split
from clearpipe.training.metrics import ECE_BINS, expected_calibration_error

MIN_ROWS = 50
"""Fewest labelled rows a temperature is fitted on: on fewer, it follows their noise."""
BOUNDS = TEMPERATURE_BOUNDS
"""The temperatures searched: from 20x sharper to 20x softer than the raw softmax."""
POWER_BOUNDS = (0.2, 5.0)
"""The margin temperature's powers searched; 1 is plain temperature scaling."""
FOLDS = 5
MIN_GAIN = 0.001
"""Relative drop of held-out NLL the margin temperature needs to be chosen over plain temperature."""
METHODS = ("auto", "temperature", "margin_temperature")


@dataclass(frozen=True)
class Calibration:
    """A fitted temperature and what it did on the rows it was fitted on; `to_dict()` is what
    config.json holds under `clearpipe_calibration` (and metrics.json under `calibration`)."""

    scaling: Temperature
    fitted_on: str
    rows: int
    ece_before: float
    ece_after: float
    nll_before: float
    nll_after: float
    ece_bins: int = ECE_BINS
    held_out_nll: dict[str, float] | None = None  # per method, when `method="auto"` compared them
    rejected: str | None = None  # why "auto" kept plain temperature where `held_out_nll` favoured the margin

    @property
    def temperature(self) -> float:
        return self.scaling.value

    def to_dict(self) -> dict:
        found = {k: v for k, v in asdict(self).items() if k != "scaling"}
        for key in ("held_out_nll", "rejected"):
            if found[key] is None:
                del found[key]
        return {**self.scaling.to_dict(), **found}

    def summary(self) -> str:
        """One line for the terminal.

        >>> Calibration(Temperature(1.5), "dev.tsv", 872, 0.08, 0.02, 0.36, 0.27).summary()
        'temperature 1.500 fitted on dev.tsv (872 rows): ECE 0.0800 -> 0.0200, log loss 0.3600 -> 0.2700'
        """
        power = "" if self.scaling.power == 1.0 else f" with margin power {self.scaling.power:.3f}"
        rejected = "" if self.rejected is None else f" ({self.rejected})"
        return (
            f"temperature {self.temperature:.3f}{power} fitted on {self.fitted_on} ({self.rows} rows): "
            f"ECE {self.ece_before:.4f} -> {self.ece_after:.4f}, "
            f"log loss {self.nll_before:.4f} -> {self.nll_after:.4f}{rejected}"
        )


def nll(logits: np.ndarray, y: np.ndarray, scaling: Temperature | None = None) -> float:
    """Mean negative log-likelihood of label ids `y` (N,) under the softmax of scaled `logits`.

    >>> round(nll(np.array([[0.0, 0.0]]), np.array([1])), 4)
    0.6931
    """
    z = logits if scaling is None else scaling.apply(logits)  # (N, L)
    z = z - z.max(axis=1, keepdims=True)
    log_probs = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-log_probs[np.arange(len(y)), y].mean())


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """The temperature in `BOUNDS` that minimizes `nll(logits, y, T)`.

    >>> fit_temperature(np.array([[4.0, 0.0], [0.0, 4.0], [4.0, 0.0], [4.0, 0.0]]), np.array([0, 1, 0, 1]))  # doctest: +SKIP
    3.6
    """
    from scipy.optimize import minimize_scalar

    logits = np.asarray(logits, dtype=np.float64)
    low, high = np.log(BOUNDS)
    found = minimize_scalar(
        lambda log_t: nll(logits, y, Temperature(float(np.exp(log_t)))),
        bounds=(low, high),
        method="bounded",
        options={"xatol": 1e-6},
    )
    return float(np.exp(found.x))


def fit_margin_temperature(logits: np.ndarray, y: np.ndarray) -> Temperature:
    """The margin temperature (value and power, within `BOUNDS` and `POWER_BOUNDS`) minimizing NLL,
    searched from the plain temperature's fit with scipy's L-BFGS-B.

    >>> fit_margin_temperature(val_logits, val_labels)  # doctest: +SKIP
    Temperature(value=7.16, power=2.22)
    """
    from scipy.optimize import minimize

    logits = np.asarray(logits, dtype=np.float64)
    start = np.log([fit_temperature(logits, y), 1.0])
    found = minimize(
        lambda x: nll(logits, y, Temperature(*np.exp(x))),
        start,
        method="L-BFGS-B",
        bounds=[tuple(np.log(BOUNDS)), tuple(np.log(POWER_BOUNDS))],
    )
    best = found.x if found.fun < nll(logits, y, Temperature(*np.exp(start))) else start
    return Temperature(*(round(float(v), 6) for v in np.exp(best)))


def _fit_method(logits: np.ndarray, y: np.ndarray, method: str) -> Temperature:
    if method == "margin_temperature":
        return fit_margin_temperature(logits, y)
    return Temperature(round(fit_temperature(logits, y), 6))


def held_out_nll(logits: np.ndarray, y: np.ndarray, folds: int = FOLDS, seed: int = 0) -> dict[str, float]:
    """Each method's NLL on rows it was not fitted on: `folds`-fold cross-validation, shuffled.

    >>> held_out_nll(val_logits, val_labels)  # doctest: +SKIP
    {'temperature': 0.267, 'margin_temperature': 0.256}
    """
    order = np.random.default_rng(seed).permutation(len(y))
    totals = dict.fromkeys(METHODS[1:], 0.0)
    for part in np.array_split(order, folds):
        rest = np.setdiff1d(order, part)
        for method in totals:
            scaling = _fit_method(logits[rest], y[rest], method)
            totals[method] += nll(logits[part], y[part], scaling) * len(part)
    return {method: round(total / len(y), 6) for method, total in totals.items()}


def at_bound(scaling: Temperature, rel: float = 1e-3) -> bool:
    """Whether a margin temperature's value or power sits on the edge of the range searched.

    >>> at_bound(Temperature(20.0, 2.86)), at_bound(Temperature(7.2, 2.2))
    (True, False)
    """
    if scaling.power == 1.0:
        return False
    edges = [*BOUNDS, *POWER_BOUNDS]
    return any(abs(v - e) <= rel * e for v in (scaling.value, scaling.power) for e in edges)


def check_fittable(y: np.ndarray, labels: list[str], source: str) -> None:
    """Refuse data a temperature cannot be fitted on, saying why."""
    if len(y) < MIN_ROWS:
        raise InputError(
            f"{source}: {len(y)} labelled rows are too few to fit a temperature; it needs at least "
            f"{MIN_ROWS}, and a few hundred held-out rows give a steadier one"
        )
    present = np.unique(y)
    if len(present) < 2:
        raise InputError(
            f"{source}: every row has the label {labels[int(present[0])]!r}; a temperature needs at "
            "least two classes in the data (on one class the best fit is to be sure of everything)"
        )


def check_calibratable(classifier: Classifier) -> None:
    """Refuse models whose scores are not one softmax over their labels."""
    config = classifier.model.config
    if is_multi_label(config):
        raise InputError(
            f"{classifier.source} is a multi-label model: each label gets its own sigmoid score and is "
            "decided by its saved threshold (label_thresholds); temperature scaling fits softmax models"
        )
    activation = default_activation(config)
    if activation is not Activation.SOFTMAX:
        raise InputError(
            f"{classifier.source} scores with {activation.value}, not softmax "
            f"({config.num_labels} output(s), problem_type {config.problem_type}); "
            "temperature scaling fits single-label softmax models"
        )


def fit(logits: np.ndarray, y: np.ndarray, fitted_on: str, method: str = "auto") -> Calibration:
    """Fit a temperature on `logits` (N, L) and label ids `y` (N,), with ECE and NLL around it.

    `method` is "temperature", "margin_temperature", or "auto": the margin temperature only
    where cross-validation says it predicts unseen rows better (see the module docstring).

    >>> fit(val_logits, val_labels, "dev.tsv").temperature  # doctest: +SKIP
    1.84
    """
    if method not in METHODS:
        raise InputError(f"the calibration method must be one of {', '.join(METHODS)}, got {method!r}")
    logits = np.asarray(logits, dtype=np.float64)
    y = np.asarray(y)
    compared = held_out_nll(logits, y) if method == "auto" else None
    if compared is not None:
        # a temperature that already predicts every held-out row (NLL rounds to 0: logits that
        # separate the classes by hundreds, as a barely regularised head's can) leaves nothing to gain
        plain = compared["temperature"]
        gain = 1 - compared["margin_temperature"] / plain if plain > 0 else 0.0
        method = "margin_temperature" if gain > MIN_GAIN else "temperature"
    scaling = _fit_method(logits, y, method)
    rejected = None
    if compared is not None and at_bound(scaling):
        rejected = (
            f"margin temperature not used: its fit ran into a bound "
            f"(T {scaling.value:.3g}, power {scaling.power:.3g})"
        )
        scaling = _fit_method(logits, y, "temperature")

    def ece(t: Temperature | None) -> float:
        probs = activate(logits if t is None else t.apply(logits), Activation.SOFTMAX)
        return expected_calibration_error(probs.max(axis=1), probs.argmax(axis=1) == y)

    return Calibration(
        scaling=scaling,
        fitted_on=fitted_on,
        rows=len(y),
        ece_before=ece(None),
        ece_after=ece(scaling),
        nll_before=round(nll(logits, y), 6),
        nll_after=round(nll(logits, y, scaling), 6),
        held_out_nll=compared,
        rejected=rejected,
    )


def calibrate_split(
    classifier: Classifier, split: Split, fitted_on: str, method: str = "auto"
) -> Calibration:
    """Fit a temperature for `classifier` on a labelled split, from its raw logits.

    The data is checked before the model runs, so a refusal is immediate.

    >>> calibrate_split(clearpipe.load("out"), data.validation, "validation").temperature  # doctest: +SKIP
    1.84
    """
    check_calibratable(classifier)
    y = np.asarray(split.labels)
    check_fittable(y, classifier.labels, fitted_on)
    logits = classifier.logits(classifier.tokenize(split.items))  # (N, L), never temperature-scaled
    return fit(logits, y, fitted_on, method)


def write_calibration(folder: Path, calibration: Calibration) -> None:
    """Save `calibration` into `folder`'s config.json (and metrics.json and model card, if there).

    config.json is rewritten the way transformers writes it (sorted keys, two-space indent), with
    only the `clearpipe_calibration` key added or replaced.
    """
    config_path = folder / "config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config[CALIBRATION_KEY] = calibration.to_dict()
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    metrics_path = folder / "metrics.json"
    if metrics_path.is_file():
        metrics = json.loads(metrics_path.read_text(encoding="utf-8"))
        metrics["calibration"] = calibration.to_dict()
        metrics_path.write_text(json.dumps(metrics, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    card = folder / "README.md"
    if card.is_file():
        card.write_text(with_card_section(card.read_text(encoding="utf-8"), calibration), encoding="utf-8")


def card_section(calibration: Calibration) -> list[str]:
    """The model card's "Calibration" section."""
    c = calibration
    how = (
        f"logits are divided by T = {c.temperature:.4f}"
        if c.scaling.power == 1.0
        else f"each row's logits are divided by T = {c.temperature:.4f} x margin^(1 - {c.scaling.power:.4f}), "
        "margin being the gap between its two best logits"
    )
    return [
        "## Calibration",
        "",
        f"Scores are temperature-scaled (Guo et al., 2017): {how}, fitted on {c.fitted_on} ({c.rows} rows) "
        "to minimize log loss. Labels never change.",
        "",
        "| on the fitting data | ECE | log loss |",
        "| --- | --- | --- |",
        f"| raw softmax | {c.ece_before:.4f} | {c.nll_before:.4f} |",
        f"| calibrated | {c.ece_after:.4f} | {c.nll_after:.4f} |",
        "",
        f"ECE uses {c.ece_bins} equal-width confidence bins. clearpipe applies T (config.json key "
        f"`{CALIBRATION_KEY}`; `calibrated=False` or `--no-calibration` turns it off); "
        "`transformers.pipeline` ignores the key and gives the raw softmax.",
        "",
    ]


def with_card_section(card: str, calibration: Calibration) -> str:
    """`card` with its Calibration section added before "## Use" (or at the end), or replaced."""
    card = re.sub(r"## Calibration\n.*?(?=^## |\Z)", "", card, flags=re.S | re.M)
    section = "\n".join(card_section(calibration)) + "\n"
    if "\n## Use\n" in card:
        return card.replace("\n## Use\n", "\n" + section + "## Use\n", 1)
    return card.rstrip("\n") + "\n\n" + section


def write_calibrated_copy(source: str, output: Path, calibration: Calibration) -> Path:
    """Copy checkpoint `source` (a folder, or a hub id through the local cache) to `output` with
    `calibration` saved in it. The copy is assembled beside `output` and renamed into place, so
    `output` is either absent or complete.
    """
    check_output(source, output)
    tmp = output.with_name(f".{output.name}.clearpipe-tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        _copy_checkpoint(source, tmp)
        write_calibration(tmp, calibration)
        if output.exists():
            output.rmdir()  # checked empty: a folder made for us
        os.replace(tmp, output)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return output


def check_output(source: str, output: Path) -> None:
    """Refuse an output folder that holds anything, or that is the source itself or inside it."""
    if output.exists() and (not output.is_dir() or any(output.iterdir())):
        raise InputError(f"{output} already exists and is not an empty folder; choose a new output folder")
    folder = Path(source)
    if folder.is_dir() and output.resolve().is_relative_to(folder.resolve()):
        raise InputError(f"{output} is inside the model folder {source}; write the calibrated copy elsewhere")


def _copy_checkpoint(source: str, destination: Path) -> None:
    destination.parent.mkdir(parents=True, exist_ok=True)
    if Path(source).is_dir():
        # Symlinks (a hub cache snapshot) are copied as the files they point to.
        shutil.copytree(source, destination, ignore=shutil.ignore_patterns("checkpoints", ".git"))
        return
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from clearpipe.loading import quiet_transformers

    # A hub id: the weights as published (not the copy clearpipe loaded and tuned for speed).
    with quiet_transformers():
        model = AutoModelForSequenceClassification.from_pretrained(source, dtype="auto")
    model.save_pretrained(str(destination))
    AutoTokenizer.from_pretrained(source).save_pretrained(str(destination))
