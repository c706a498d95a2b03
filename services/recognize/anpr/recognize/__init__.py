"""Recognize service: stateless plate detection and reading on ONNX Runtime with dynamic batching."""
