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

A PaddleOCR-style CTC text-line reader (``format: paddleocr-ctc``) takes no plate config; its own keys are::

    reader:
      format: paddleocr-ctc
      path: rec.onnx
      dictionary: keys.txt        # optional; one character per line, else the model's ``character`` metadata
      input_height: 48            # optional; used when the model's input height is dynamic (default 48)
      min_width: 96               # limits of the line width fed to the model (rounded up to a multiple of 8)
      max_width: 128
      width_scale: 1.0            # horizontal squeeze of the crop, in (0, 2]
      two_row_below: 0            # crops with width/height below this are also read as two rows (0: off)

A ``refiner`` entry (a detector of the same contract, with ``context: [1.0, 1.5]``, the region it looks at around
each box in box widths and heights per side; :mod:`anpr.recognition.refine`) takes a second look at every box to
read. A ``scoring`` entry (:mod:`anpr.recognition.scoring`) turns a reading's confidence into a calibrated probability
that its text is right and sets the default floor below which readings are not reported.

The detector may be left out for a reading-only set (plate crops in, text out). Problems are reported as
:class:`ModelError` naming the manifest and the field.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from anpr.recognition.errors import ModelError
from anpr.recognition.scoring import PlateScorer, parse_scorer

DETECTOR_FORMATS = frozenset({"yolov9-end2end"})
READER_FORMATS = frozenset({"fast-plate-ocr", "paddleocr-ctc"})
MANIFEST_NAME = "manifest.yaml"


@dataclass(frozen=True, slots=True)
class DetectorSpec:
    """The detector entry of a manifest, with its path resolved."""

    format: str
    path: Path
    name: str
    version: str
    input_size: int | None = None
    # A refiner only: the region it looks at around a box, in box widths and heights on each side.
    context: tuple[float, float] = (1.0, 1.5)


@dataclass(frozen=True, slots=True)
class ReaderSpec:
    """The reader entry of a manifest, with its paths resolved.

    ``plate_config`` belongs to ``fast-plate-ocr`` (required there, None otherwise); ``min_confidence`` belongs
    to every format; the fields between them belong to ``paddleocr-ctc`` and keep their defaults for other formats.
    """

    format: str
    path: Path
    plate_config: Path | None
    name: str
    version: str
    dictionary: Path | None = None
    input_height: int | None = None
    min_width: int = 96
    max_width: int = 128
    width_scale: float = 1.0
    two_row_below: float = 0.0
    # Readings whose overall confidence is below this are not returned unless the caller asks for another minimum:
    # the floor depends on how the reader's probabilities are calibrated, so it travels with the model.
    min_confidence: float = 0.0

    @property
    def files(self) -> tuple[Path, ...]:
        """Every file the reader loads: the model, then its plate config or dictionary when it has one."""
        extra = (self.plate_config, self.dictionary)
        return (self.path, *(p for p in extra if p is not None))


@dataclass(frozen=True, slots=True)
class ModelManifest:
    """A validated manifest: the model set's name and version and its two stages."""

    name: str
    version: str
    source: Path
    reader: ReaderSpec
    detector: DetectorSpec | None = None
    # How sure a reading is, calibrated (:mod:`anpr.recognition.scoring`); None: the reader's own confidence.
    scoring: PlateScorer | None = None
    # A second look at each box to read (:mod:`anpr.recognition.refine`); None: boxes are read as detected.
    refiner: DetectorSpec | None = None

    @property
    def min_confidence(self) -> float:
        """The default reading floor: the scorer's operating point, else the reader's own floor."""
        return self.scoring.min_confidence if self.scoring is not None else self.reader.min_confidence


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


_COMMON_READER_KEYS = {"format", "path", "name", "version", "sha256", "min_confidence"}
_READER_KEYS = {
    "fast-plate-ocr": _COMMON_READER_KEYS | {"plate_config"},
    "paddleocr-ctc": _COMMON_READER_KEYS
    | {"dictionary", "input_height", "min_width", "max_width", "width_scale", "two_row_below"},
}


def _integer(value: object, field: str, low: int, high: int) -> int:
    # bool is an int subclass, and "true" is never a sensible width.
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ModelError(f"{field} must be an integer between {low} and {high}, not {value!r}")
    return value


def _number(value: object, field: str, low: float, high: float, *, open_low: bool = False) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not (low < value if open_low else low <= value)
        or not value <= high
    ):
        interval = f"{'(' if open_low else '['}{low:g}, {high:g}]"
        raise ModelError(f"{field} must be a number in {interval}, not {value!r}")
    return float(value)


def _reader(base: Path, r: dict[str, Any], source: Path) -> ReaderSpec:
    """The reader entry: the common keys, then the format's own."""
    where = f"{source}: reader"
    r_format = _text(r, "format", "reader")
    if r_format not in READER_FORMATS:
        raise ModelError(
            f"{source}: reader.format {r_format!r} is unknown; supported: {', '.join(sorted(READER_FORMATS))}"
        )
    _known_keys(r, _READER_KEYS[r_format], f"{where} ({r_format})")
    reader_path = _file(base, r, "path", "reader")
    _check_digest(r, reader_path, "reader")
    min_confidence = _number(r.get("min_confidence", 0.0), f"{where}.min_confidence", 0.0, 1.0)
    if r_format == "fast-plate-ocr":
        plate_config = _file(base, r, "plate_config", "reader")
        return ReaderSpec(
            format=r_format,
            path=reader_path,
            plate_config=plate_config,
            name=_text(r, "name", "reader", reader_path.stem),
            version=_text(r, "version", "reader", _content_hash([reader_path, plate_config])),
            min_confidence=min_confidence,
        )
    dictionary = _file(base, r, "dictionary", "reader") if r.get("dictionary") is not None else None
    input_height = r.get("input_height")
    min_width = _integer(r.get("min_width", 96), f"{where}.min_width", 8, 4096)
    max_width = _integer(r.get("max_width", 128), f"{where}.max_width", 8, 4096)
    if max_width < min_width:
        raise ModelError(f"{where}.max_width ({max_width}) must not be below min_width ({min_width})")
    files = [reader_path] if dictionary is None else [reader_path, dictionary]
    return ReaderSpec(
        format=r_format,
        path=reader_path,
        plate_config=None,
        name=_text(r, "name", "reader", reader_path.stem),
        version=_text(r, "version", "reader", _content_hash(files)),
        dictionary=dictionary,
        input_height=None if input_height is None else _integer(input_height, f"{where}.input_height", 8, 512),
        min_width=min_width,
        max_width=max_width,
        width_scale=_number(r.get("width_scale", 1.0), f"{where}.width_scale", 0.0, 2.0, open_low=True),
        # An aspect ratio (width / height): two-row plates are roughly 1.5-2.5, one-row plates 3-5.
        two_row_below=_number(r.get("two_row_below", 0.0), f"{where}.two_row_below", 0.0, 10.0),
        min_confidence=min_confidence,
    )


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
    _known_keys(top, {"name", "version", "detector", "refiner", "reader", "scoring"}, f"model manifest {path}")
    base = path.parent

    if "reader" not in top:
        raise ModelError(f"model manifest {path} has no reader entry")
    reader = _reader(base, _mapping(top["reader"], f"{path}: reader"), path)
    files = list(reader.files)

    detector = _detector(base, top["detector"], path, "detector") if top.get("detector") is not None else None
    refiner = _detector(base, top["refiner"], path, "refiner") if top.get("refiner") is not None else None
    if refiner is not None and detector is None:
        raise ModelError(f"model manifest {path} has a refiner but no detector")
    for spec in (refiner, detector):
        if spec is not None:
            files.insert(0, spec.path)

    return ModelManifest(
        name=_text(top, "name", "manifest", base.name or "models"),
        version=_text(top, "version", "manifest", _content_hash(files)),
        source=path,
        reader=reader,
        detector=detector,
        scoring=parse_scorer(top["scoring"], f"{path}: scoring") if top.get("scoring") is not None else None,
        refiner=refiner,
    )


def _detector(base: Path, entry: object, path: Path, role: str) -> DetectorSpec:
    """A detector entry (``detector``, or ``refiner`` with its ``context``)."""
    d = _mapping(entry, f"{path}: {role}")
    allowed = {"format", "path", "name", "version", "input_size", "sha256"} | (
        {"context"} if role == "refiner" else set()
    )
    _known_keys(d, allowed, f"{path}: {role}")
    d_format = _text(d, "format", role)
    if d_format not in DETECTOR_FORMATS:
        raise ModelError(
            f"{path}: {role}.format {d_format!r} is unknown; supported: {', '.join(sorted(DETECTOR_FORMATS))}"
        )
    detector_path = _file(base, d, "path", role)
    _check_digest(d, detector_path, role)
    input_size = d.get("input_size")
    if input_size is not None and (not isinstance(input_size, int) or not 32 <= input_size <= 4096):
        raise ModelError(f"{path}: {role}.input_size must be an integer between 32 and 4096")
    context = d.get("context", [1.0, 1.5])
    if not isinstance(context, list | tuple) or len(context) != 2:
        raise ModelError(f"{path}: {role}.context must be [widths, heights] around a box")
    return DetectorSpec(
        format=d_format,
        path=detector_path,
        name=_text(d, "name", role, detector_path.stem),
        version=_text(d, "version", role, _content_hash([detector_path])),
        input_size=input_size,
        context=(
            _number(context[0], f"{path}: {role}.context[0]", 0.0, 10.0),
            _number(context[1], f"{path}: {role}.context[1]", 0.0, 10.0),
        ),
    )
