"""How an operator command calls a service and reports: JSON lines out, plain errors, fixed exit statuses.

Exit status 0: done; 1: the call failed (stderr shows the gRPC status code name and its details); 2: the command
could not be made as given (usage, profile, token, unreadable file). Never a traceback.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable, Coroutine
from typing import Any

import grpc
import grpc.aio
from google.protobuf import json_format
from google.protobuf.message import Message

from anpr.cli.profile import Target, UsageError
from anpr.runtime import tls
from anpr.runtime.errors import ConfigurationError
from anpr.runtime.retries import service_config

EXIT_FAILED_CALL = 1
EXIT_USAGE = 2


def metadata(target: Target) -> tuple[tuple[str, str], ...]:
    """The call metadata that carries the bearer token."""
    return (("authorization", f"Bearer {target.token}"),)


# An operator command has no retry loop of its own: gRPC retries a call refused as UNAVAILABLE (a service restarting)
# a few times, throttled (see anpr.runtime.retries).
CALL_ATTEMPTS = 3


def channel(target: Target) -> grpc.aio.Channel:
    """A channel to the target (TLS when the target has it), retrying calls that find the service unavailable."""
    return tls.open_channel(
        target.address,
        target.tls,
        options=[("grpc.service_config", service_config(retry_attempts=CALL_ATTEMPTS)), ("grpc.enable_retries", 1)],
    )


def print_message(message: Message) -> None:
    """One message as one JSON line on stdout (proto field names, enum names)."""
    print(json.dumps(json_format.MessageToDict(message, preserving_proto_field_name=True)), flush=True)


def run_command(name: str, action: Callable[[], Coroutine[Any, Any, int | None]]) -> int:
    """Run ``action`` and turn what can go wrong into a message on stderr and an exit status."""
    try:
        return asyncio.run(action()) or 0
    except grpc.aio.AioRpcError as exc:
        print(f"anpr {name}: {exc.code().name}: {exc.details()}", file=sys.stderr)
        return EXIT_FAILED_CALL
    except (UsageError, ConfigurationError, OSError, ValueError) as exc:
        print(f"anpr {name}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
