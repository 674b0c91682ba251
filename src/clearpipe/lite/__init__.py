"""Exported models without torch: clearpipe's smallest way to classify text.

`clearpipe.lite.load(folder)` runs a folder written by `clearpipe export` (OpenVINO IR or ONNX)
with the `tokenizers` library, numpy and OpenVINO or ONNX Runtime, and nothing else: neither
torch nor transformers is imported, which saves about 250 MB of memory and a second of start-up.
It gives the same output contract as `clearpipe.load` (`clearpipe.postprocess`), with the saved
temperature and thresholds, the same token-budget batching (`clearpipe.engine.batching`) and,
for int8 OpenVINO exports, the same float re-run of close calls (`clearpipe.engine.recheck`).
What it leaves out: tracing, long-text chunking and GPUs, which need the full classifier.

>>> from clearpipe import lite
>>> clf = lite.load("exported-int8/")  # doctest: +SKIP
>>> clf(["a gripping, beautifully acted film"])  # doctest: +SKIP
[{'label': 'positive', 'score': 0.99}]
"""

from __future__ import annotations

from clearpipe.lite.classifier import LiteClassifier, load

__all__ = ["LiteClassifier", "load"]
