"""What `clearpipe export` writes into its folder, by name (no torch: `clearpipe.lite` reads these).

An ONNX export holds `ONNX_FILE`; an OpenVINO one `OPENVINO_FILE` (beside it a `.bin` with the
weights) and, when int8, `REFEREE_FILE`: the same graph in float, which re-runs int8's close
calls (`clearpipe.engine.recheck`). Both hold the checkpoint's `config.json` and tokenizer files,
and `EXPORT_INFO`, the export's record (`clearpipe.onnx.export.ExportReport`).
"""

from __future__ import annotations

ONNX_FILE = "model.onnx"
OPENVINO_FILE = "model.xml"
REFEREE_FILE = "referee.xml"
EXPORT_INFO = "clearpipe_export.json"
