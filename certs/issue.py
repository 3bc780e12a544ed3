"""Pure: builds a CA, server, device and client certificates (EC P-256), and CRLs.

No file writes and no clock reads: ``now`` is a parameter, and callers write the PEM
files (``certs.files``). A device certificate's CN is the device serial, which is also
its MQTT client id and, on the broker, its user name (``use_identity_as_username``).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from certs.errors import CertError

SERIAL_PATTERN = re.compile(r"^[A-Z0-9][A-Z0-9_-]{2,31}$")
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
DEFAULT_SERVER_SANS = ("localhost", "127.0.0.1", "::1")

PrivateKey = ec.EllipticCurvePrivateKey


@dataclass(frozen=True, slots=True)
class Issued:
    """A key and the certificate issued for it."""

    key: PrivateKey
    cert: x509.Certificate


def new_key() -> PrivateKey:
    """A fresh EC P-256 key (the default everywhere: small, fast, widely supported)."""
    return ec.generate_private_key(ec.SECP256R1())


def validate_serial(serial: str) -> str:
    """Raises CertError unless ``serial`` is 3-32 of A-Z, 0-9, '_' or '-'."""
    if not SERIAL_PATTERN.match(serial):
        raise CertError(
            f"malformed device serial {serial!r}: expected 3-32 characters A-Z, 0-9, '_' or '-', "
            "starting with a letter or digit"
        )
    return serial


def validate_name(name: str) -> str:
    """Raises CertError unless ``name`` is a safe observer name (it becomes a file name and a
    broker user name, so no '/', spaces or MQTT wildcards)."""
    if not NAME_PATTERN.match(name):
        raise CertError(
            f"malformed identity name {name!r}: expected letters, digits, '_', '.', '-'"
        )
    return name


def _validity(now: datetime, days: int, not_before: datetime | None) -> tuple[datetime, datetime]:
    if now.tzinfo is None:
        raise CertError("now must be timezone-aware")
    if days < 1:
        raise CertError(f"validity must be at least 1 day, got {days}")
    start = not_before or (now - timedelta(minutes=5))  # tolerate small clock skew
    return start, start + timedelta(days=days)


def _check_ca_usable(ca: Issued, now: datetime) -> None:
    """Refuse to sign with an expired CA, a non-CA, or a key that is not the CA's own."""
    if now.tzinfo is None:
        raise CertError("now must be timezone-aware")
    if now >= ca.cert.not_valid_after_utc:
        raise CertError(
            f"the CA expired on {ca.cert.not_valid_after_utc:%Y-%m-%d}; create a new CA"
        )
    try:
        constraints = ca.cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound as err:
        raise CertError("the CA certificate has no BasicConstraints: not a CA") from err
    if not constraints.ca:
        raise CertError("the given CA certificate is not a CA (BasicConstraints ca=false)")
    if ca.key.public_key() != ca.cert.public_key():
        raise CertError("the CA key does not belong to the CA certificate")


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def build_ca(common_name: str, now: datetime, days: int = 3650) -> Issued:
    """A self-signed CA that may sign leaf certificates and CRLs (path length 0: no sub-CAs).

    Args:
        common_name: the CA's subject CN.
        now: timezone-aware issue time; validity starts 5 minutes earlier (clock skew).
        days: validity in days, at least 1.

    Raises:
        CertError: ``now`` is naive or ``days`` < 1.
    """
    key = new_key()
    start, end = _validity(now, days, None)
    name = _name(common_name)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
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
    return Issued(key, cert)


def _leaf(
    ca: Issued,
    common_name: str,
    usage: x509.ObjectIdentifier,
    sans: Sequence[x509.GeneralName],
    now: datetime,
    days: int,
    not_before: datetime | None,
) -> Issued:
    _check_ca_usable(ca, now)
    key = new_key()
    start, end = _validity(now, days, not_before)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=True,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False
        )
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
    return Issued(key, builder.sign(ca.key, hashes.SHA256()))


def san_entries(names: Iterable[str]) -> list[x509.GeneralName]:
    """DNS names and IP addresses, each as the right SAN type."""
    entries: list[x509.GeneralName] = []
    for name in names:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            # DNS SANs are A-labels (RFC 5280 4.2.1.6): ASCII, no spaces or slashes.
            if not name or not name.isascii() or any(c in name for c in " /\\"):
                raise CertError(f"malformed host name for a SAN: {name!r}") from None
            entries.append(x509.DNSName(name))
    return entries


def issue_server_cert(
    ca: Issued,
    sans: Sequence[str] = DEFAULT_SERVER_SANS,
    now: datetime | None = None,
    days: int = 825,
    not_before: datetime | None = None,
) -> Issued:
    """The broker's certificate; its SANs are what clients check the host name against.

    Args:
        ca: the issuing CA (key and certificate).
        sans: DNS names and IP addresses; the first is also the CN.
        now: timezone-aware issue time (required; the default exists only for the order).
        days: validity in days, at least 1.
        not_before: start of validity (default ``now`` - 5 min); lets tests make expired certs.

    Raises:
        CertError: no SANs, a malformed SAN, an expired or unusable CA, or bad validity.
    """
    if now is None:
        raise CertError("now is required")
    if not sans:
        raise CertError("a server certificate needs at least one SAN")
    return _leaf(
        ca, sans[0], ExtendedKeyUsageOID.SERVER_AUTH, san_entries(sans), now, days, not_before
    )


def issue_device_cert(
    ca: Issued, serial: str, now: datetime, days: int = 825, not_before: datetime | None = None
) -> Issued:
    """A device identity: CN = serial, client authentication only.

    Raises:
        CertError: a malformed serial (see ``SERIAL_PATTERN``), an expired or unusable CA,
            or bad validity.
    """
    validate_serial(serial)
    return _leaf(ca, serial, ExtendedKeyUsageOID.CLIENT_AUTH, [], now, days, not_before)


def issue_client_cert(
    ca: Issued, name: str, now: datetime, days: int = 825, not_before: datetime | None = None
) -> Issued:
    """An admin/observer identity (a backend): CN = name, client authentication only.

    Raises:
        CertError: a malformed name, an expired or unusable CA, or bad validity.
    """
    validate_name(name)
    return _leaf(ca, name, ExtendedKeyUsageOID.CLIENT_AUTH, [], now, days, not_before)


def issue_crl(
    ca: Issued, revoked_serial_numbers: Iterable[int], now: datetime, days: int = 30
) -> x509.CertificateRevocationList:
    """A CRL signed by the CA, revoking the given certificate serial numbers.

    Raises:
        CertError: the CA is expired or unusable, or ``days`` < 1.
    """
    if days < 1:
        raise CertError(f"CRL validity must be at least 1 day, got {days}")
    _check_ca_usable(ca, now)
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.cert.subject)
        .last_update(now - timedelta(minutes=5))
        .next_update(now + timedelta(days=days))
    )
    for number in revoked_serial_numbers:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(number).revocation_date(now).build()
        )
    return builder.sign(ca.key, hashes.SHA256())
