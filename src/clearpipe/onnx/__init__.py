"""Exporting a checkpoint to ONNX, with an accuracy guard against the float32 original.

`export` writes the folder, `agreement` compares its answers with PyTorch's, and `validation`
reads the texts to compare on. Running an exported folder is the engine's (`engine.onnx_runtime`).
"""
