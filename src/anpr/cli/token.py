"""``anpr token``: create a random bearer token and the secrets-file entry that stores only its SHA-256."""

from __future__ import annotations

import argparse
import json
import secrets

from anpr.runtime.auth import Role, token_digest


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``anpr token``."""
    parser.add_argument("--identity", required=True, help="who holds the token, e.g. cam-ct-001 or ops-jsmith")
    parser.add_argument(
        "--role", action="append", required=True, choices=[role.value for role in Role], help="repeat for several"
    )


def new_token() -> str:
    """A random URL-safe token with 256 bits of entropy."""
    return secrets.token_urlsafe(32)


def run(args: argparse.Namespace) -> int:
    """Print the token (give it to the client) and the entry (add it to the secrets file's clients list)."""
    value = new_token()
    entry = {"identity": args.identity, "roles": sorted(set(args.role)), "token_sha256": token_digest(value)}
    print(json.dumps({"token": value, "secrets_file_entry": entry}, indent=2))
    return 0
