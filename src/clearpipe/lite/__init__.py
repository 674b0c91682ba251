"""Exported models without torch: clearpipe's smallest way to classify text.

`clearpipe.lite.load(folder)` runs a folder written by `clearpipe export` (OpenVINO IR or ONNX)
with the `tokenizers` library, numpy and OpenVINO or ONNX Runtime, and nothing else: neither
torch nor transformers is imported, which saves about 250 MB of memory and a second of start-up.
Past the tokenizer it runs the full classifier's own code, which is torch-free: the engine's loop
(`clearpipe.engine.loop`) over the same graph runner `clearpipe.load` uses for an export
(`clearpipe.engine.graphs`), with the int8 referee's re-runs, and stage 3
(`clearpipe.postprocess.Scoring`: saved temperature, thresholds, `min_score`, the output contract).
So the same rows give the same labels and scores through `clearpipe.load(folder)`.
What it leaves out: tracing, long-text chunking and GPUs, which need the full classifier.

>>> from clearpipe import lite
>>> clf = lite.load("exported-int8/")  # doctest: +SKIP
>>> clf(["a gripping, beautifully acted film"])  # doctest: +SKIP
[{'label': 'positive', 'score': 0.99}]
"""

from __future__ import annotations

from clearpipe.lite.classifier import LiteClassifier, LiteSettings, load

__all__ = ["LiteClassifier", "LiteSettings", "load"]
