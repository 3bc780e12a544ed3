"""Shell: a whole throwaway PKI in one folder, for tests, the demo and HIL runs.

Layout inside the folder (the CLI uses the same)::

    ca.pem  ca.key                 the CA
    server.pem  server.key         the broker (SANs: localhost, 127.0.0.1, ::1)
    devices/<SERIAL>.pem/.key      device identities (CN = serial)
    clients/<NAME>.pem/.key        admin/observer identities
    crl.pem                        revocations, when any

``provision`` is idempotent: files that exist are reused, not overwritten.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

from cryptography.hazmat.primitives.serialization import Encoding

from certs.files import cert_pem, load_cert, load_issued, write_issued, write_pem
from certs.issue import (
    DEFAULT_SERVER_SANS,
    Issued,
    build_ca,
    issue_client_cert,
    issue_crl,
    issue_device_cert,
    issue_server_cert,
    validate_name,
    validate_serial,
)


@dataclass(frozen=True, slots=True)
class Identity:
    """A certificate file and its key file."""

    cert: Path
    key: Path


@dataclass(frozen=True, slots=True)
class Pki:
    """Where the files of one PKI folder are; the identity maps grow as certs are added."""

    directory: Path
    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path
    devices: dict[str, Identity] = field(default_factory=dict)
    observers: dict[str, Identity] = field(default_factory=dict)

    def ca(self) -> Issued:
        """Load the CA key and certificate (raises CertError if missing or mismatched)."""
        return load_issued(self.ca_cert, self.ca_key)

    @property
    def crl(self) -> Path:
        """The CRL file written by ``revoke``."""
        return self.directory / "crl.pem"


def _now(now: datetime | None) -> datetime:
    return now or datetime.now(UTC)


def _ensure(cert: Path, key: Path, make: Callable[[], Issued], force: bool) -> None:
    """Issue into ``cert``/``key`` unless both exist (idempotent provisioning)."""
    if cert.exists() and key.exists() and not force:
        return
    write_issued(make(), cert, key, force=True)


def provision(
    directory: Path,
    serials: Sequence[str],
    observers: Sequence[str] = ("observer",),
    now: datetime | None = None,
    days: int = 30,
    force: bool = False,
    server_sans: Sequence[str] = DEFAULT_SERVER_SANS,
) -> Pki:
    """Create (or reuse) a CA, a server certificate and the given identities.

    Idempotent: a certificate whose cert and key files both exist is reused unless
    ``force``; so a second run (or a second test session) loads instead of issuing.
    The CA lives one day longer than the leaves, so they all expire as leaves.

    Raises:
        CertError: a malformed serial or name, an expired reused CA, unwritable files.
    """
    moment = _now(now)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    pki = Pki(
        directory,
        directory / "ca.pem",
        directory / "ca.key",
        directory / "server.pem",
        directory / "server.key",
    )
    _ensure(pki.ca_cert, pki.ca_key, lambda: build_ca("edge test CA", moment, days=days + 1), force)
    ca = pki.ca()
    _ensure(
        pki.server_cert,
        pki.server_key,
        lambda: issue_server_cert(ca, server_sans, moment, days),
        force,
    )
    for serial in serials:
        validate_serial(serial)
        ident = Identity(
            directory / "devices" / f"{serial}.pem", directory / "devices" / f"{serial}.key"
        )
        _ensure(ident.cert, ident.key, partial(issue_device_cert, ca, serial, moment, days), force)
        pki.devices[serial] = ident
    for name in observers:
        validate_name(name)
        ident = Identity(
            directory / "clients" / f"{name}.pem", directory / "clients" / f"{name}.key"
        )
        _ensure(ident.cert, ident.key, partial(issue_client_cert, ca, name, moment, days), force)
        pki.observers[name] = ident
    return pki


def issue_device_files(
    pki: Pki,
    serial: str,
    now: datetime | None = None,
    days: int = 30,
    not_before: datetime | None = None,
    name: str | None = None,
) -> Identity:
    """Issue (always anew) a device certificate, e.g. an expired one or a rotation.

    ``name`` is the file stem (default: the serial), so a test can keep several
    certificates for one serial side by side.
    """
    stem = name or serial
    ident = Identity(
        pki.directory / "devices" / f"{stem}.pem", pki.directory / "devices" / f"{stem}.key"
    )
    issued = issue_device_cert(pki.ca(), serial, _now(now), days, not_before)
    write_issued(issued, ident.cert, ident.key, force=True)
    if name is None:
        pki.devices[serial] = ident
    return ident


def issue_server_files(
    pki: Pki, sans: Sequence[str], name: str = "server", now: datetime | None = None, days: int = 30
) -> Identity:
    """Issue a broker certificate for other host names (e.g. to test a host-name mismatch)."""
    ident = Identity(pki.directory / f"{name}.pem", pki.directory / f"{name}.key")
    write_issued(
        issue_server_cert(pki.ca(), sans, _now(now), days), ident.cert, ident.key, force=True
    )
    return ident


def revoke(pki: Pki, certs: Sequence[Path], now: datetime | None = None) -> Path:
    """Write ``crl.pem`` revoking the given certificates (replacing any earlier CRL).

    Raises:
        CertError: a missing or malformed certificate file, or an unusable CA.
    """
    numbers = [load_cert(path).serial_number for path in certs]
    crl = issue_crl(pki.ca(), numbers, _now(now))
    write_pem(pki.crl, crl.public_bytes(Encoding.PEM), private=False, force=True)
    return pki.crl


__all__ = [
    "Identity",
    "Pki",
    "cert_pem",
    "issue_device_files",
    "issue_server_files",
    "provision",
    "revoke",
]
