"""Training tools for the shipped plate models (optional ``[train]`` extra: PyTorch CPU, onnx, tqdm).

``python -m anpr.training ctc-reader|detector|export|fuse|evaluate``; ``tools/train`` runs the whole recipe from a seed.
"""
