"""Hidden-state distillation on tiny models: the teacher's pooled states match transformers' own and
are cached, the loss is the documented distance, the student's states move toward the teacher's,
the maps ride in checkpoints (so `--resume` works) and never reach the saved folder."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModel, AutoTokenizer, pipeline

from clearpipe.errors import InputError
from clearpipe.training import distill, hidden
from clearpipe.training.data import DataOptions
from clearpipe.training.distill import Distillation
from clearpipe.training.train import TrainConfig, train
from cli.helpers import assert_user_error, run
from training.test_distill import FAST, NAMES, SST2, texts


def test_each_student_layer_learns_a_teacher_layer_spread_over_its_depth():
    assert hidden.layer_map(6, 12) == [2, 4, 6, 8, 10, 12]
    assert hidden.layer_map(2, 2) == [1, 2]
    assert hidden.layer_map(3, 12) == [4, 8, 12]  # the last layer always learns the last


def pooled_by_transformers(source, items, layers) -> np.ndarray:
    """The oracle: one text at a time (no padding at all), mean over its tokens, per layer."""
    tokenizer = AutoTokenizer.from_pretrained(source)
    model = AutoModel.from_pretrained(source).eval()
    rows = []
    for item in items:
        text = (item,) if isinstance(item, str) else item
        limit = model.config.max_position_embeddings  # the teacher's own limit, as clearpipe truncates
        enc = tokenizer(*text, truncation=True, max_length=limit, return_tensors="pt")
        with torch.no_grad():
            states = model(**enc, output_hidden_states=True).hidden_states
        rows.append([states[k][0].mean(dim=0).numpy() for k in layers])
    return np.array(rows)


def test_teacher_states_match_transformers_and_are_cached(teacher, tmp_path, monkeypatch):
    import clearpipe.engine.precision

    monkeypatch.setattr(clearpipe.engine.precision, "cpu_has_native_bf16", lambda: False)  # exact float32
    items = texts()[:40]
    states = hidden.teacher_states(str(teacher), items, 2, tmp_path, "key")
    assert states.shape == (40, 2, 32) and states.dtype == np.float16
    np.testing.assert_allclose(states, pooled_by_transformers(teacher, items, [1, 2]), atol=2e-3, rtol=2e-3)
    pairs = [("a fine film", "it was good"), ("dull", "a long , slow and very tedious evening")]
    paired = hidden.teacher_states(str(teacher), pairs, 2, tmp_path, "pairs")
    np.testing.assert_allclose(paired, pooled_by_transformers(teacher, pairs, [1, 2]), atol=2e-3, rtol=2e-3)

    def no_teacher(*args):
        raise AssertionError("the teacher ran again")

    monkeypatch.setattr(hidden, "_Encoder", no_teacher)
    np.testing.assert_array_equal(hidden.teacher_states(str(teacher), items, 2, tmp_path, "key"), states)
    with pytest.raises(AssertionError, match="ran again"):  # another key (other texts): not cached
        hidden.teacher_states(str(teacher), items, 2, tmp_path, "other")


class _Student(torch.nn.Module):
    """Just the maps `hidden.attach` gives a model, here identities."""

    def __init__(self, layers: int, width: int) -> None:
        super().__init__()
        maps = torch.nn.ModuleList(torch.nn.Linear(width, width) for _ in range(layers))
        for m in maps:
            torch.nn.init.eye_(m.weight)
            torch.nn.init.zeros_(m.bias)
        self.add_module(hidden.PROJECTION, maps)


def test_the_loss_is_the_squared_distance_of_unit_vectors_over_layers():
    student = _Student(layers=2, width=2)
    mask = torch.tensor([[1, 1, 0]])  # the padded third token must not count
    tokens = torch.tensor([[[1.0, 0.0], [3.0, 0.0], [0.0, 50.0]]])  # pools to (2, 0)
    states = (tokens, tokens, tokens)  # embeddings, layer 1, layer 2
    same = torch.tensor([[[4.0, 0.0], [0.5, 0.0]]])  # the same directions, other lengths
    orthogonal = torch.tensor([[[0.0, 1.0], [0.0, 2.0]]])
    half = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])  # one layer right, one at 90 degrees
    with torch.no_grad():
        assert float(hidden.loss(student, states, mask, same)) == pytest.approx(0.0, abs=1e-6)
        assert float(hidden.loss(student, states, mask, orthogonal)) == pytest.approx(2.0)
        assert float(hidden.loss(student, states, mask, half)) == pytest.approx(1.0)


def residual_to_teacher(student_folder, teacher_states: np.ndarray) -> float:
    """How far the student's pooled layers are from the teacher's under the best linear map per
    layer, fitted on half the texts and measured on the other half (unit vectors, mean squared
    error, mean over layers)."""
    tokenizer = AutoTokenizer.from_pretrained(student_folder)
    model = AutoModel.from_pretrained(student_folder).eval()
    enc = tokenizer(texts(), padding=True, truncation=True, max_length=32, return_tensors="pt")
    with torch.no_grad():
        layers = model(**enc, output_hidden_states=True).hidden_states[1:]
    residuals = []
    for k, states in enumerate(layers):
        x = torch.nn.functional.normalize(hidden.mean_pool(states, enc["attention_mask"]), dim=-1).numpy()
        y = teacher_states[:, k].astype(np.float32)
        y = y / np.linalg.norm(y, axis=1, keepdims=True)
        x = np.hstack([x, np.ones((len(x), 1), np.float32)])
        half = len(x) // 2
        w, *_ = np.linalg.lstsq(x[:half], y[:half], rcond=None)
        residuals.append(((x[half:] @ w - y[half:]) ** 2).sum(axis=1).mean())
    return float(np.mean(residuals))


@pytest.mark.slow
def test_a_student_taught_hidden_states_moves_toward_the_teachers(teacher, student_base, tmp_path):
    def student(hidden_weight: float):
        config = TrainConfig(
            data=str(SST2),
            base=str(student_base),
            output=str(tmp_path / f"student-{hidden_weight}"),
            data_options=DataOptions(label_names=NAMES),
            epochs=3,
            learning_rate=1e-2,
            # The labels alone (weight 0) besides the states, so only the states tell the two apart.
            distillation=Distillation((str(teacher),), weight=0.0, hidden_weight=hidden_weight),
            calibrate=False,
            **FAST,
        )
        return train(config).output

    taught = student(20.0)
    key = distill.fingerprint(str(teacher), texts())
    states = hidden.teacher_states(str(teacher), texts(), 2, taught, key)  # from the run's cache
    taught_residual, plain_residual = (
        residual_to_teacher(taught, states),
        residual_to_teacher(student(0.0), states),
    )
    print(f"residual to the teacher's layers: {taught_residual:.4f} taught, {plain_residual:.4f} not")
    assert taught_residual < 0.8 * plain_residual  # measured: 0.147 against 0.239


@pytest.mark.slow
def test_the_maps_ride_in_checkpoints_and_never_reach_the_saved_folder(teacher, student_base, tmp_path):
    output = tmp_path / "student"
    config = TrainConfig(
        data=str(SST2),
        base=str(student_base),
        output=str(output),
        data_options=DataOptions(label_names=NAMES),
        epochs=1,
        distillation=Distillation((str(teacher),), hidden_weight=1.0),
        keep_checkpoints=True,
        calibrate=False,
        **FAST,
    )
    first = train(config)
    (checkpoint,) = (output / "checkpoints").glob("checkpoint-*")
    assert any(k.startswith(hidden.PROJECTION) for k in load_file(checkpoint / "model.safetensors"))
    # A second epoch resumes from that checkpoint, maps and optimizer state included.
    resumed = train(TrainConfig(**{**config.__dict__, "epochs": 2, "resume": True}))
    assert first.global_step == math.ceil(270 / 16) and resumed.global_step == 2 * first.global_step
    saved = load_file(output / "model.safetensors")
    assert not any(hidden.PROJECTION in k for k in saved)
    recorded = json.loads((output / "training_config.json").read_text())["resolved"]["teacher"]
    assert recorded["hidden_weight"] == 1.0
    assert "each layer learnt its mean-pooled states" in (output / "README.md").read_text(encoding="utf-8")
    classify = pipeline("text-classification", model=str(output))  # a plain transformers checkpoint
    assert classify("a fine film")[0]["label"] in NAMES


@pytest.mark.slow
def test_hidden_distillation_settings_are_checked(teacher, second_teacher, student_base, tmp_path):
    with pytest.raises(InputError, match="--distill-hidden must be 0 or more"):
        Distillation(("t",), hidden_weight=-1.0).check()
    with pytest.raises(InputError, match="one --teacher"):
        Distillation((str(teacher), str(second_teacher)), hidden_weight=1.0).check()
    result = run("train", SST2, "--base", student_base, "-o", tmp_path / "out", "--distill-hidden", "1")
    assert_user_error(result, "--distill-hidden", "--teacher")
