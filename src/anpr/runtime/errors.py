"""Domain exceptions raised by core code, and their gRPC status codes.

Core code never touches gRPC: it raises one of these, and the error interceptor (the one boundary) turns it into
``context.abort(code, message)``. Messages are shown to callers, so they must be clear and must not contain
personal information such as plate text.
"""

from __future__ import annotations

import grpc


class AnprError(Exception):
    """Base class of every error that a caller should see with a specific status code."""

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(AnprError):
    """The request is malformed: bad image, bad pattern, field out of range."""

    code = grpc.StatusCode.INVALID_ARGUMENT


class NotFound(AnprError):
    """A named resource (camera, hotlist, alert) does not exist."""

    code = grpc.StatusCode.NOT_FOUND


class AlreadyExists(AnprError):
    """A resource with the same unique name already exists."""

    code = grpc.StatusCode.ALREADY_EXISTS


class FailedPrecondition(AnprError):
    """The system is not in a state that allows the operation (e.g. acknowledging a cancelled alert)."""

    code = grpc.StatusCode.FAILED_PRECONDITION


class OutOfRange(AnprError):
    """A position (cursor, page) outside what exists, e.g. a stream cursor already purged by retention."""

    code = grpc.StatusCode.OUT_OF_RANGE


class Aborted(AnprError):
    """A concurrency conflict; the caller may retry."""

    code = grpc.StatusCode.ABORTED


class ResourceExhausted(AnprError):
    """A quota, queue or size limit was hit; the caller should back off."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class Unavailable(AnprError):
    """A dependency (database, downstream service) is down; the caller may retry."""

    code = grpc.StatusCode.UNAVAILABLE


class DeadlineExceeded(AnprError):
    """The caller's deadline passed before the work could be done; the work was dropped."""

    code = grpc.StatusCode.DEADLINE_EXCEEDED


class Unauthenticated(AnprError):
    """No or unknown credentials."""

    code = grpc.StatusCode.UNAUTHENTICATED


class PermissionDenied(AnprError):
    """Known caller, but its roles do not allow the call."""

    code = grpc.StatusCode.PERMISSION_DENIED


class ConfigurationError(Exception):
    """Start-up configuration is invalid; raised before any server starts, printed as a readable message."""
