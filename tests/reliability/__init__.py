"""Reliability tests and tools: model-file fuzzing, tiny hand-encoded models, crash-attributing workers.

Everything here runs without TensorFlow and without the ``onnx`` package, so
it works in the lean device environment too.
"""
