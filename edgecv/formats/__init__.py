"""Pure-Python readers for model file formats (no TensorFlow, no onnx package).

They let the runtime read manifests and metadata, let ``targets.check`` list ops
and tensor types, and let loaders reject corrupt files before a native runtime
sees them.
"""
