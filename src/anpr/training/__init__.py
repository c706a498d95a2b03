"""Training tools for the shipped plate models (optional ``[train]`` extra: PyTorch CPU, onnx, tqdm).

``python -m anpr.training reader|detector|export|evaluate``; ``tools/train`` runs the whole recipe from a seed.
"""
