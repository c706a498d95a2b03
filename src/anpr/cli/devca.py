"""A development certificate authority for ``anpr up``: one CA, a certificate per service, one for clients.

The CA lives in the suite's data directory and is kept between runs (so a client told to trust it once keeps
working); leaf certificates are issued afresh on every start. Every leaf carries both the server and the client
usage, so a service's certificate is also its identity when it calls another service (mutual TLS). Private keys
are written readable by the current user only. For development only: production certificates come from the
operator's PKI (cert-manager, a corporate CA), see docs/security.md.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_NAME = "anpr-up development CA"
CA_DAYS = 365
LEAF_DAYS = 30
CA_RENEW_BEFORE = datetime.timedelta(days=30)
# Names every leaf answers to, whatever --host says: clients on the same machine connect to these.
LOCAL_NAMES = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True)
class Issued:
    """A certificate and its private key on disk."""

    cert_file: Path
    key_file: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    temporary = path.with_suffix(path.suffix + ".tmp")
    temporary.unlink(missing_ok=True)
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(pem)
    temporary.replace(path)


def _write_certificate(path: Path, certificate: x509.Certificate) -> None:
    temporary = path.with_suffix(path.suffix + ".tmp")
    temporary.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    temporary.replace(path)  # a running service re-reads the file: never let it see half of one


def _subject_alternative_names(hosts: Iterable[str]) -> x509.SubjectAlternativeName:
    entries: list[x509.GeneralName] = []
    for host in dict.fromkeys(h.strip("[]") for h in hosts if h):
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            entries.append(x509.DNSName(host))
    return x509.SubjectAlternativeName(entries)


class DevelopmentCA:
    """The CA of one data directory: :meth:`open` loads or creates it, :meth:`issue` signs leaf certificates."""

    def __init__(self, directory: Path, certificate: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> None:
        self.directory = directory
        self.certificate = certificate
        self._key = key

    @property
    def cert_file(self) -> Path:
        """The CA certificate clients and services trust."""
        return self.directory / "ca.pem"

    @classmethod
    def open(cls, directory: Path) -> DevelopmentCA:
        """The CA kept in ``directory``, or a new one when there is none or it expires within 30 days."""
        directory.mkdir(parents=True, exist_ok=True)
        directory.chmod(0o700)
        cert_file, key_file = directory / "ca.pem", directory / "ca.key"
        if cert_file.is_file() and key_file.is_file():
            try:
                certificate = x509.load_pem_x509_certificate(cert_file.read_bytes())
                key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
            except ValueError:
                pass  # unreadable: make a new one below
            else:
                fresh = certificate.not_valid_after_utc - datetime.datetime.now(datetime.UTC) > CA_RENEW_BEFORE
                if fresh and isinstance(key, ec.EllipticCurvePrivateKey):
                    return cls(directory, certificate, key)
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(_name(CA_NAME))
            .issuer_name(_name(CA_NAME))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        _write_key(key_file, key)
        _write_certificate(cert_file, certificate)
        return cls(directory, certificate, key)

    def issue(self, name: str, hosts: Iterable[str] = (), *, days: int = LEAF_DAYS) -> Issued:
        """Write ``<name>.pem`` and ``<name>.key``: a certificate for ``name`` valid for ``hosts`` and local names,
        usable as a server and as a client certificate."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(_name(name))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                critical=False,
            )
            .add_extension(_subject_alternative_names([name, *hosts, *LOCAL_NAMES]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.certificate.public_key()),  # type: ignore[arg-type]
                critical=False,
            )
            .sign(self._key, hashes.SHA256())
        )
        issued = Issued(self.directory / f"{name}.pem", self.directory / f"{name}.key")
        # Key first: a service re-reading the pair in between sees a mismatch and keeps its old pair until the
        # certificate follows.
        _write_key(issued.key_file, key)
        _write_certificate(issued.cert_file, certificate)
        return issued
