"""The rivals `throughput.py` times clearpipe against, besides transformers.pipeline.

    PYTHONPATH=src python benchmarks/rivals.py prepare SETTING MODEL FOLDER   # what throughput.py runs

Each rival is made once per run from the benchmark's checkpoint by `prepare` (in a process of
its own, into a folder under the benchmark's scratch) and then timed by a worker process that
imports only its runtime, numpy and `tokenizers`: not torch nor transformers, as a deployment
of that runtime would, so that its peak RSS is its own.

- `openvino`: OpenVINO's own Python API (not optimum-intel, which pins an older transformers).
  `ov.convert_model` traces the plain transformers model in float32, as optimum-intel does
  underneath, and the IR is saved with float32 weights; the worker reads it with `ov.Core().read_model` and compiles
  it with OpenVINO's defaults (inference precision bf16 on CPUs with AVX-512 BF16 or AMX, else
  float32; latency hint) and `INFERENCE_NUM_THREADS`.
- `openvino-int8`: that IR quantized by nncf's post-training quantization, weights and
  activations (`nncf.quantize`, `ModelType.TRANSFORMER`), calibrated on clearpipe's built-in
  sample texts of the model's kind (`clearpipe.engine.samples`), never on the benchmark's texts.
- `ctranslate2-int8`: `ctranslate2.converters.TransformersConverter` writes the BERT encoder
  with int8 weights; `ctranslate2.Encoder` runs it in compute type int8, and the classification
  head (BERT's pooler output times the classifier's weights) is applied in numpy from the
  checkpoint's own head weights, saved beside it.

All three take rows sorted by token length in batches of `batch_size`, each padded to its own
longest row, with the order restored: the strongest simple use of each runtime. Tokenization
truncates at the model's limit (512 at most), as the fp32 reference pipeline does.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import statistics
import sys
import time
from pathlib import Path

# setting -> (runtime, quantize); throughput.py's SETTINGS name them with kind "rival".
RIVALS = {
    "openvino": ("openvino", None),
    "openvino-int8": ("openvino", "int8"),
    "ctranslate2-int8": ("ctranslate2", "int8"),
}
PACKAGES = {
    "openvino": ("openvino",),
    "openvino-int8": ("openvino", "nncf"),
    "ctranslate2-int8": ("ctranslate2",),
}
INFO = "rival.json"  # labels, activation and truncation, written by `prepare`
HEAD = "head.npz"  # CTranslate2: the classifier's weight and bias
CALIBRATION_TEXTS = 300


def missing(setting: str) -> str | None:
    """Why `setting` cannot run here (a package not installed), or None when it can.

    >>> missing("no-such-rival")
    'no-such-rival is not a rival of this benchmark'
    """
    if setting not in PACKAGES:
        return f"{setting} is not a rival of this benchmark"
    absent = [name for name in PACKAGES[setting] if importlib.util.find_spec(name) is None]
    if absent:
        return f"{', '.join(absent)} not installed (pip install 'clearpipe[bench]')"
    return None


# --- Preparation: once per run, torch and transformers allowed --------------------------------
def prepare(setting: str, model: str, folder: Path) -> None:
    """Write the rival `setting` of checkpoint `model` into `folder` (created anew)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    runtime, quantize = RIVALS[setting]
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    tokenizer = AutoTokenizer.from_pretrained(model)
    classifier = AutoModelForSequenceClassification.from_pretrained(model, dtype="float32").eval()
    config = classifier.config
    info = {
        "labels": [config.id2label[i] for i in range(config.num_labels)],
        "activation": "sigmoid" if config.problem_type == "multi_label_classification" else "softmax",
        "max_length": min(tokenizer.model_max_length, 512),
        "token_type_ids": "token_type_ids" in tokenizer.model_input_names,
    }
    tokenizer.backend_tokenizer.save(str(folder / "tokenizer.json"))  # the fast tokenizer alone
    (folder / INFO).write_text(json.dumps(info), encoding="utf-8")
    if runtime == "openvino":
        _prepare_openvino(classifier, tokenizer, folder, quantize)
    else:
        _prepare_ctranslate2(model, classifier, folder, quantize)


def _prepare_openvino(classifier, tokenizer, folder: Path, quantize: str | None) -> None:
    import warnings

    import openvino as ov
    import torch

    example = dict(
        tokenizer(["an example text to trace", "and a shorter one"], padding=True, return_tensors="pt")
    )
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the tracer's warnings about Python booleans
        ov_model = ov.convert_model(classifier, example_input=example)
    if quantize == "int8":
        ov_model = _quantize_nncf(ov_model, tokenizer, classifier)
    ov.save_model(ov_model, str(folder / "model.xml"), compress_to_fp16=False)  # as optimum-intel saves


def _quantize_nncf(ov_model, tokenizer, classifier):
    """Post-training int8 quantization of weights and activations, calibrated one text a row."""
    import nncf

    from clearpipe.engine.samples import builtin_sample

    labels = [classifier.config.id2label[i] for i in range(classifier.config.num_labels)]
    _, texts = builtin_sample(labels)
    names = [i.get_any_name() for i in ov_model.inputs]
    feeds = [
        {k: v for k, v in tokenizer([text], truncation=True, return_tensors="np").items() if k in names}
        for text in texts[:CALIBRATION_TEXTS]
    ]
    return nncf.quantize(
        ov_model, nncf.Dataset(feeds), model_type=nncf.ModelType.TRANSFORMER, subset_size=len(feeds)
    )


def _prepare_ctranslate2(model: str, classifier, folder: Path, quantize: str | None) -> None:
    import numpy as np
    from ctranslate2.converters import TransformersConverter

    if classifier.config.model_type != "bert":
        raise SystemExit(
            f"the CTranslate2 rival applies BERT's head only; this is {classifier.config.model_type}"
        )
    TransformersConverter(model).convert(str(folder / "ct2"), quantization=quantize, force=True)
    head = classifier.classifier  # logits = classifier(pooler_output), dropout off
    np.savez(folder / HEAD, weight=head.weight.detach().numpy(), bias=head.bias.detach().numpy())


# --- Timing: in the worker, runtime + numpy + tokenizers only ---------------------------------
def run(setting: str, folder: Path, texts: list[str], threads: int, batch_size: int, repeats: int):
    """Median seconds of `repeats` passes over `texts`, the last pass's scores (rows, labels) in
    input order, and the number format the runtime reports."""
    info = json.loads((folder / INFO).read_text(encoding="utf-8"))
    tokenizer = _tokenizer(folder, info["max_length"])
    runtime, quantize = RIVALS[setting]
    if runtime == "openvino":
        logits_of, dtype = _openvino(folder, threads, info["token_type_ids"], quantize)
    else:
        logits_of, dtype = _ctranslate2(folder, threads, quantize)

    def classify(chunk: list[str]):
        encodings = tokenizer.encode_batch(chunk)
        return _activate(_in_order(encodings, batch_size, logits_of), info["activation"])

    classify(texts[:4])  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        scores = classify(texts)
        times.append(time.perf_counter() - start)
    return statistics.median(times), scores, dtype


def _tokenizer(folder: Path, max_length: int):
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=max_length)
    return tokenizer


def _in_order(encodings, batch_size: int, logits_of):
    """Logits of every encoding, computed in length-sorted padded batches, in input order."""
    import numpy as np

    order = sorted(range(len(encodings)), key=lambda i: len(encodings[i].ids))
    out = None
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        logits = logits_of([encodings[i] for i in rows])  # (B, num_labels)
        if out is None:
            out = np.empty((len(encodings), logits.shape[1]), dtype=np.float32)
        out[rows] = logits
    return out


def _padded(encodings, with_types: bool) -> dict:
    """input_ids, attention_mask (and token_type_ids) as (B, T) int64, T the batch's longest."""
    import numpy as np

    longest = max(len(e.ids) for e in encodings)
    ids = np.zeros((len(encodings), longest), dtype=np.int64)
    mask = np.zeros_like(ids)
    types = np.zeros_like(ids)
    for row, e in enumerate(encodings):
        ids[row, : len(e.ids)] = e.ids
        mask[row, : len(e.ids)] = 1
        types[row, : len(e.ids)] = e.type_ids
    feeds = {"input_ids": ids, "attention_mask": mask}
    return feeds | ({"token_type_ids": types} if with_types else {})


def _activate(logits, activation: str):
    import numpy as np

    if activation == "sigmoid":
        return 1 / (1 + np.exp(-logits))
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def _openvino(folder: Path, threads: int, with_types: bool, quantize: str | None):
    import openvino as ov

    core = ov.Core()
    config = {"INFERENCE_NUM_THREADS": threads} if threads else {}
    compiled = core.compile_model(core.read_model(folder / "model.xml"), "CPU", config)
    request = compiled.create_infer_request()
    names = {i.get_any_name() for i in compiled.inputs}
    with_types = with_types and "token_type_ids" in names

    def logits_of(encodings):
        return request.infer(_padded(encodings, with_types))[compiled.output(0)].copy()

    precision = compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()  # bf16 or f32
    return logits_of, f"openvino {quantize}/{precision}" if quantize else f"openvino {precision}"


def _ctranslate2(folder: Path, threads: int, quantize: str | None):
    import ctranslate2
    import numpy as np

    encoder = ctranslate2.Encoder(
        str(folder / "ct2"), device="cpu", compute_type=quantize or "default", intra_threads=threads
    )
    head = np.load(folder / HEAD)
    weight, bias = head["weight"].T.copy(), head["bias"]  # (hidden, num_labels), (num_labels,)

    def logits_of(encodings):
        ids = [e.ids for e in encodings]
        types = [e.type_ids for e in encodings]
        pooled = np.asarray(encoder.forward_batch(ids, token_type_ids=types).pooler_output)  # (B, hidden)
        return pooled.astype(np.float32) @ weight + bias

    return logits_of, f"ctranslate2 {encoder.compute_type}"


if __name__ == "__main__":
    if len(sys.argv) != 5 or sys.argv[1] != "prepare":
        sys.exit(__doc__.splitlines()[2].strip())
    prepare(sys.argv[2], sys.argv[3], Path(sys.argv[4]))
