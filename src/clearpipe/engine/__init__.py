"""The engine: what makes the three stages fast, and nothing a reader needs to follow one text.

`engine.run` is its one entry point (tokenized rows and a model in, logits in input order out),
with token-budget batching, padding-free packing and int8 close-call re-runs inside; the other
modules are the kernels and number formats (`precision`, `int8`, `prepacked`, `attention`,
`first_token`), the ONNX Runtime backend, and process-level tuning (`allocator`, `collector`).
"""
