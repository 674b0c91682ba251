"""Traces: one input followed through the classifier's own stages, with timings and attributions.

`record` runs and records the stages (`Classifier.trace` calls it), `attributions` adds
Integrated Gradients, and `terminal`, `html` and `schema.json` render or describe the result.
"""
