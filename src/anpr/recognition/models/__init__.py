"""The project's default plate models, shipped as package data (see MODEL_CARD.md and manifest.yaml).

``MODELS_DIR / "manifest.yaml"`` names the detector (open-image-models YOLOv9 "end2end" contract) and the reader
(paddleocr-ctc contract). ``tools/train`` rebuilds every file here from a seed.
"""

from pathlib import Path

MODELS_DIR = Path(__file__).resolve().parent
MANIFEST = MODELS_DIR / "manifest.yaml"
