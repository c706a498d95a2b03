"""Where the operator commands find the suite: a profile file, or flags that override it.

``anpr up`` writes ``<data-dir>/profile.json`` (mode 0600; default ``~/.local/share/anpr-suite/up/profile.json``)
with every service's address, the TLS files of its development CA and one token per role. A command reads it
(``--profile`` or ``$ANPR_PROFILE`` name another) and uses the token of the role its calls need, so an operator
command needs no flag at all on a machine that runs ``anpr up``. ``--address`` replaces the service's address,
``--token=VALUE`` (the ``=`` form also takes a token starting with ``-``), ``--token-file`` or ``$ANPR_TOKEN`` the
token, and ``--ca-file``/``--cert``/``--key`` the TLS files.
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from anpr.cli.transport import add_tls_arguments, client_tls
from anpr.runtime.settings import DEFAULT_DATA_DIR
from anpr.runtime.tls import ClientTls

DEFAULT_PROFILE = DEFAULT_DATA_DIR / "up" / "profile.json"


class UsageError(Exception):
    """The command cannot be made as given (exit status 2): no profile, no token, an unreadable file."""


@dataclass(frozen=True)
class Target:
    """One service to call: where, with which bearer token, over which TLS (None: plaintext)."""

    address: str
    token: str
    tls: ClientTls | None


def profile_path(value: Path | None = None) -> Path:
    """The profile named by ``--profile``, else ``$ANPR_PROFILE``, else the one ``anpr up`` writes by default."""
    if value is not None:
        return value
    from_env = os.environ.get("ANPR_PROFILE", "")
    return Path(from_env) if from_env else DEFAULT_PROFILE


def write_profile(path: Path, document: dict[str, Any]) -> None:
    """Write ``document`` readable by the current user only (it holds tokens), replacing the file atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_suffix(".tmp")
    staging.unlink(missing_ok=True)
    descriptor = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump(document, handle, indent=2)
    staging.replace(path)


def read_profile(path: Path) -> dict[str, Any]:
    """The profile's content, or UsageError saying how to get one."""
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        raise UsageError(f"no profile at {path}: run `anpr up`, or give --profile, or --address and --token") from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read the profile {path}: {exc}") from None
    if not isinstance(document, dict):
        raise UsageError(f"the profile {path} is not a JSON object")
    return document


def add_connection_arguments(parser: argparse.ArgumentParser) -> None:
    """``--profile``, ``--address``, ``--token``, ``--token-file`` and the TLS options."""
    group = parser.add_argument_group("connection (default: the profile `anpr up` writes)")
    group.add_argument("--profile", type=Path, default=None, help="profile file (default: $ANPR_PROFILE or anpr up's)")
    group.add_argument("--address", default=None, help="host:port of the service (default: from the profile)")
    group.add_argument(
        "--token", default=None, help="bearer token; --token=VALUE for one starting with '-' (default: $ANPR_TOKEN)"
    )
    group.add_argument("--token-file", type=Path, default=None, help="file holding the bearer token")
    add_tls_arguments(parser)


def _explicit_token(args: argparse.Namespace) -> str:
    if args.token:
        return str(args.token)
    if args.token_file is not None:
        try:
            return str(args.token_file.read_text().strip())
        except OSError as exc:
            raise UsageError(f"cannot read --token-file: {exc}") from None
    return os.environ.get("ANPR_TOKEN", "")


def resolve(args: argparse.Namespace, service: str, role: str) -> Target:
    """The target of a call to ``service`` as a client holding ``role``, from the flags and then the profile."""
    token = _explicit_token(args)
    explicit_tls = client_tls(args)
    profile: dict[str, Any] = {}
    if args.address is None or not token or (explicit_tls is None and args.profile is not None):
        profile = read_profile(profile_path(args.profile))
    address = args.address or profile.get("services", {}).get(service, {}).get("grpc_address")
    if not address:
        raise UsageError(f"the profile has no address of {service}: give --address")
    token = token or profile.get("tokens", {}).get(role, "")
    if not token:
        raise UsageError(f"no token of the role {role}: give --token, --token-file or set ANPR_TOKEN")
    tls = explicit_tls
    if tls is None and profile.get("tls"):
        files = profile["tls"]
        tls = ClientTls(Path(files["ca_file"]), Path(files["client_cert_file"]), Path(files["client_key_file"]), None)
    return Target(str(address), token, tls)
