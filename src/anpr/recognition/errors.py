"""Domain errors of the recognition pipeline.

Per-image errors carry a machine-readable ``reason`` whose name equals the ``ImageErrorReason`` enum value of the
recognize contract without its prefix (``NOT_AN_IMAGE`` -> ``IMAGE_ERROR_REASON_NOT_AN_IMAGE``), and derive from the
runtime's domain exceptions so the service boundary maps them to status codes without knowing the pipeline.
Messages never contain plate text.
"""

from __future__ import annotations

from anpr.runtime.errors import ConfigurationError, InvalidArgument, ResourceExhausted


class ImageInputError(InvalidArgument):
    """An image of a batch could not be used; the rest of the batch goes on."""

    reason = "UNSPECIFIED"


class EmptyImage(ImageInputError):
    """The image data is empty."""

    reason = "EMPTY"


class NotAnImage(ImageInputError):
    """The data is not a JPEG, PNG, WebP or BMP image."""

    reason = "NOT_AN_IMAGE"


class CorruptImage(ImageInputError):
    """The image is truncated or corrupt."""

    reason = "CORRUPT"


class ZeroSizeImage(ImageInputError):
    """The image declares a zero width or height."""

    reason = "ZERO_SIZE"


class DimensionsTooLarge(ImageInputError):
    """The image's declared pixel dimensions exceed the limit (decompression-bomb protection)."""

    reason = "DIMENSIONS_TOO_LARGE"


class UnusableDimensions(ImageInputError):
    """The image is too thin or too elongated to search or read (a side under the minimum, or an extreme aspect
    ratio, such as 4000x1: resizing it for the detector would produce a zero-pixel side)."""

    reason = "INVALID_ARGUMENT"


class DataTooLarge(ResourceExhausted):
    """The encoded image exceeds the per-image byte limit."""

    reason = "DATA_TOO_LARGE"


class ModelError(ConfigurationError):
    """A model file, plate config or manifest is missing or does not fit its declared format."""
