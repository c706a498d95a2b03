"""Which addresses and files a pulled source may name (AddSource makes ingest open them).

Without this, whoever may add a source can make ingest probe the internal network (cloud metadata, databases,
other pods) or read any file the process can read. So a source must pass an allow-list from the settings:

- stream sources (RTSP, MJPEG): the URI's scheme must be in ``source_allowed_schemes``, and its host either an IP
  address inside ``source_allowed_networks`` or a name in ``source_allowed_hosts`` (``.example.org`` admits every
  name under it). A name is matched as written, never resolved here: the allow-list states which names an
  administrator trusts, so listing a name is a statement about what it resolves to. Both lists are empty by
  default, which admits no stream source at all until the deployment names its camera networks.
- file sources: the resolved path (symbolic links followed) must lie under ``file_source_dir``; unset (the
  default) disables file sources.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from urllib.parse import unquote, urlsplit

from anpr.api.ingest.v1 import source_pb2
from anpr.runtime.errors import PermissionDenied

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(text: str) -> tuple[IpNetwork, ...]:
    """Comma-separated CIDR networks (ValueError on a bad one)."""
    return tuple(ipaddress.ip_network(part.strip(), strict=False) for part in text.split(",") if part.strip())


def parse_names(text: str) -> tuple[str, ...]:
    """Comma-separated, lower-cased names."""
    return tuple(part.strip().lower() for part in text.split(",") if part.strip())


class SourcePolicy:
    """Checks a source against the allow-lists; raises PermissionDenied naming the setting that refuses it."""

    def __init__(
        self, schemes: tuple[str, ...], networks: tuple[IpNetwork, ...], hosts: tuple[str, ...], file_dir: Path | None
    ) -> None:
        self._schemes = frozenset(schemes)
        self._networks = networks
        self._hosts = hosts
        self._file_dir = Path(os.path.realpath(file_dir)) if file_dir is not None else None

    def check(self, source: source_pb2.Source) -> None:
        """Refuse a source the settings do not admit (the source was validated for form already)."""
        if source.kind == source_pb2.SOURCE_KIND_FILE:
            self._check_file(source.uri)
        else:
            self._check_stream(source.uri)

    def _check_file(self, uri: str) -> None:
        if self._file_dir is None:
            raise PermissionDenied("file sources are disabled on this server (setting file_source_dir)")
        path = unquote(urlsplit(uri).path) if uri.startswith("file://") else uri
        if "\x00" in path or not os.path.isabs(path):
            raise PermissionDenied("a file source must name an absolute path under file_source_dir")
        resolved = Path(os.path.realpath(path))
        if not resolved.is_relative_to(self._file_dir):
            raise PermissionDenied("a file source must lie under the server's file_source_dir")

    def _check_stream(self, uri: str) -> None:
        try:
            parts = urlsplit(uri)
            host = parts.hostname
        except ValueError:
            raise PermissionDenied("the source address is not a valid URI") from None
        if parts.scheme.lower() not in self._schemes:
            raise PermissionDenied("the source's scheme is not in the server's source_allowed_schemes")
        if not host:
            raise PermissionDenied("the source address names no host")
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            address = None
        if address is not None:
            if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
                address = address.ipv4_mapped
            if any(address in network for network in self._networks):
                return
            raise PermissionDenied("the source's address is not in the server's source_allowed_networks")
        name = host.lower().rstrip(".")
        if any(name == allowed or (allowed.startswith(".") and name.endswith(allowed)) for allowed in self._hosts):
            return
        raise PermissionDenied("the source's host is not in the server's source_allowed_hosts")
