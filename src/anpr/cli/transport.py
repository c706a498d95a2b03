"""TLS options shared by the CLI commands that call a running service.

``--ca-file`` (or ``$ANPR_TLS_CA_FILE``) turns TLS on and names the CA that verifies the service; ``--cert`` and
``--key`` (``$ANPR_TLS_CERT_FILE``, ``$ANPR_TLS_KEY_FILE``) add a client certificate for services that require
mutual TLS; ``--tls`` alone uses the system's trusted roots; ``--server-name`` overrides the name expected in the
service's certificate. ``anpr up`` prints the values for the suite it runs.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from anpr.runtime.tls import ClientTls

ENVIRONMENT = {"ca_file": "ANPR_TLS_CA_FILE", "cert_file": "ANPR_TLS_CERT_FILE", "key_file": "ANPR_TLS_KEY_FILE"}


def _path_from_environment(name: str) -> Path | None:
    value = os.environ.get(ENVIRONMENT[name], "")
    return Path(value) if value else None


def add_tls_arguments(parser: argparse.ArgumentParser) -> None:
    """``--tls``, ``--ca-file``, ``--cert``, ``--key`` and ``--server-name``."""
    group = parser.add_argument_group("transport security")
    group.add_argument("--tls", action="store_true", help="use TLS even without --ca-file (system trusted roots)")
    group.add_argument(
        "--ca-file", type=Path, default=_path_from_environment("ca_file"), help="CA bundle (default: $ANPR_TLS_CA_FILE)"
    )
    group.add_argument(
        "--cert",
        dest="cert_file",
        type=Path,
        default=_path_from_environment("cert_file"),
        help="client certificate for mutual TLS (default: $ANPR_TLS_CERT_FILE)",
    )
    group.add_argument(
        "--key",
        dest="key_file",
        type=Path,
        default=_path_from_environment("key_file"),
        help="private key of --cert (default: $ANPR_TLS_KEY_FILE)",
    )
    group.add_argument("--server-name", default=None, help="name expected in the service's certificate")


def client_tls(args: argparse.Namespace) -> ClientTls | None:
    """The TLS the arguments ask for, or None for plaintext (raises ConfigurationError on a half-given pair)."""
    if not (args.tls or args.ca_file or args.cert_file or args.key_file):
        return None
    return ClientTls(args.ca_file, args.cert_file, args.key_file, args.server_name)
