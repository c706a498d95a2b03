"""Model manifests: which detector and reader files to load, in which format.

A manifest is ``manifest.yaml`` in a model directory (or any YAML file named directly)::

    name: anpr-default            # optional; the directory name otherwise
    version: 2026.11.0            # optional; a content hash of the model files otherwise
    detector:
      format: yolov9-end2end
      path: plate_detector.onnx   # relative to the manifest's directory
      name: plate-detector
      version: "1"
      input_size: 640             # optional; required when the model's input size is dynamic
      sha256: 3f2a...             # optional; the file is refused when its digest differs
    reader:
      format: fast-plate-ocr
      path: plate_reader.onnx
      plate_config: plate_reader_config.yaml
      name: plate-reader
      version: "1"

The detector may be left out for a reading-only set (plate crops in, text out). Problems are reported as
:class:`ModelError` naming the manifest and the field.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from anpr.recognize.pipeline.errors import ModelError

DETECTOR_FORMATS = frozenset({"yolov9-end2end"})
READER_FORMATS = frozenset({"fast-plate-ocr"})
MANIFEST_NAME = "manifest.yaml"


@dataclass(frozen=True, slots=True)
class DetectorSpec:
    """The detector entry of a manifest, with its path resolved."""

    format: str
    path: Path
    name: str
    version: str
    input_size: int | None = None


@dataclass(frozen=True, slots=True)
class ReaderSpec:
    """The reader entry of a manifest, with its paths resolved."""

    format: str
    path: Path
    plate_config: Path
    name: str
    version: str


@dataclass(frozen=True, slots=True)
class ModelManifest:
    """A validated manifest: the model set's name and version and its two stages."""

    name: str
    version: str
    source: Path
    reader: ReaderSpec
    detector: DetectorSpec | None = None


def _mapping(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ModelError(f"{where} must be a mapping")
    return {str(k): v for k, v in value.items()}


def _text(entry: dict[str, Any], key: str, where: str, default: str | None = None) -> str:
    value = entry.get(key, default)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ModelError(f"{where}.{key} is required")
    if not isinstance(value, str | int | float):
        raise ModelError(f"{where}.{key} must be a string")
    return str(value)


def _file(base: Path, entry: dict[str, Any], key: str, where: str) -> Path:
    path = base / _text(entry, key, where)
    if not path.is_file():
        raise ModelError(f"{where}.{key}: file {path} does not exist")
    return path


def _check_digest(entry: dict[str, Any], path: Path, where: str) -> None:
    """Compare the model file with the manifest's optional ``sha256`` (a half-copied file fails here, clearly)."""
    expected = entry.get("sha256")
    if expected is None:
        return
    actual = hashlib.sha256(path.read_bytes()).hexdigest()
    if str(expected).lower() != actual:
        raise ModelError(f"{where}.sha256: {path} has sha256 {actual}, the manifest expects {expected}")


def _known_keys(entry: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(entry) - allowed)
    if unknown:
        raise ModelError(f"{where} has unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")


def _content_hash(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def load_manifest(location: Path) -> ModelManifest:
    """Read and validate the manifest at ``location`` (a directory holding ``manifest.yaml``, or the file)."""
    path = location / MANIFEST_NAME if location.is_dir() else location
    if not path.is_file():
        raise ModelError(f"model manifest {path} does not exist")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ModelError(f"model manifest {path} is not valid YAML: {exc}") from exc
    top = _mapping(raw, f"model manifest {path}")
    _known_keys(top, {"name", "version", "detector", "reader"}, f"model manifest {path}")
    base = path.parent

    if "reader" not in top:
        raise ModelError(f"model manifest {path} has no reader entry")
    r = _mapping(top["reader"], f"{path}: reader")
    _known_keys(r, {"format", "path", "plate_config", "name", "version", "sha256"}, f"{path}: reader")
    r_format = _text(r, "format", "reader")
    if r_format not in READER_FORMATS:
        raise ModelError(
            f"{path}: reader.format {r_format!r} is unknown; supported: {', '.join(sorted(READER_FORMATS))}"
        )
    reader_path = _file(base, r, "path", "reader")
    plate_config = _file(base, r, "plate_config", "reader")
    _check_digest(r, reader_path, "reader")
    reader = ReaderSpec(
        format=r_format,
        path=reader_path,
        plate_config=plate_config,
        name=_text(r, "name", "reader", reader_path.stem),
        version=_text(r, "version", "reader", _content_hash([reader_path, plate_config])),
    )
    files = [reader_path, plate_config]

    detector: DetectorSpec | None = None
    if top.get("detector") is not None:
        d = _mapping(top["detector"], f"{path}: detector")
        _known_keys(d, {"format", "path", "name", "version", "input_size", "sha256"}, f"{path}: detector")
        d_format = _text(d, "format", "detector")
        if d_format not in DETECTOR_FORMATS:
            raise ModelError(
                f"{path}: detector.format {d_format!r} is unknown; supported: {', '.join(sorted(DETECTOR_FORMATS))}"
            )
        detector_path = _file(base, d, "path", "detector")
        _check_digest(d, detector_path, "detector")
        input_size = d.get("input_size")
        if input_size is not None and (not isinstance(input_size, int) or not 32 <= input_size <= 4096):
            raise ModelError(f"{path}: detector.input_size must be an integer between 32 and 4096")
        detector = DetectorSpec(
            format=d_format,
            path=detector_path,
            name=_text(d, "name", "detector", detector_path.stem),
            version=_text(d, "version", "detector", _content_hash([detector_path])),
            input_size=input_size,
        )
        files.insert(0, detector_path)

    return ModelManifest(
        name=_text(top, "name", "manifest", base.name or "models"),
        version=_text(top, "version", "manifest", _content_hash(files)),
        source=path,
        reader=reader,
        detector=detector,
    )
