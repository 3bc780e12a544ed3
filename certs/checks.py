"""Pure: findings about a certificate (expiry, chain, key usage, SAN, key strength).

``check_cert`` never raises for a bad certificate: it returns findings, each with a
severity, a stable code and a sentence, so the CLI can print them all.

Rules (each has a test in ``tests/unit/test_certs.py``):

1. Outside its validity window a certificate is an error (``expired``/``not-yet-valid``);
   fewer than 30 days left is a warning (``expires-soon``), time to rotate.
2. With a CA given, the certificate must be issued and signed by it (``chain``), and the CA
   must be a CA allowed to sign certificates (``ca-flags``) and within its validity
   (``ca-expired``): TLS stacks reject each of these, so we say so before they do.
3. With a usage expected, a leaf must not be a CA, must allow digital signatures if it has a
   KeyUsage, and its ExtendedKeyUsage must name that usage (``ca-flags``/``key-usage``);
   a CA must allow keyCertSign.
4. With a host expected, the SANs must cover it; the CN is not consulted (RFC 6125 6.4.4,
   and OpenSSL hostname checks ignore the CN when SANs exist) (``san``).
5. RSA below 2048 bits and EC below 256 bits are errors (``weak-key``).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

EXPIRY_WARNING = timedelta(days=30)


class Severity(StrEnum):
    """ERROR means a TLS peer will refuse the certificate; WARNING means act soon."""

    ERROR = "error"
    WARNING = "warning"


class Usage(StrEnum):
    """What the certificate is expected to be used for (the CLI's ``--usage``)."""

    SERVER = "server"
    CLIENT = "client"
    CA = "ca"


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding: ``code`` is stable for scripts and tests, ``message`` is for people."""

    severity: Severity
    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.severity}: {self.code}: {self.message}"


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _ekus(cert: x509.Certificate) -> set[x509.ObjectIdentifier]:
    try:
        return set(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        return set()


def _san_covers(cert: x509.Certificate, host: str) -> bool:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host.lower() in (name.lower() for name in san.get_values_for_type(x509.DNSName))
    return address in san.get_values_for_type(x509.IPAddress)


def _key_usage(cert: x509.Certificate) -> x509.KeyUsage | None:
    try:
        return cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return None


def _may_sign_certs(cert: x509.Certificate) -> bool:
    usage = _key_usage(cert)
    return usage is None or usage.key_cert_sign


def _signed_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    if cert.issuer != ca.subject:
        return False
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def check_cert(
    cert: x509.Certificate,
    now: datetime,
    ca_cert: x509.Certificate | None = None,
    expect_host: str | None = None,
    expect_usage: Usage | None = None,
) -> list[Problem]:
    """Every problem found with ``cert`` at time ``now`` (empty: all good).

    Args:
        cert: the certificate to check.
        now: timezone-aware time of the check.
        ca_cert: the CA that should have issued ``cert`` (chain and CA flags are checked).
        expect_host: a DNS name or IP address the SANs must cover.
        expect_usage: server, client or CA.

    Returns:
        Findings in a stable order; never raises for a bad certificate.
    """
    problems: list[Problem] = []
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    if now < start:
        problems.append(
            Problem(Severity.ERROR, "not-yet-valid", f"valid only from {start:%Y-%m-%d %H:%M} UTC")
        )
    if now >= end:
        problems.append(Problem(Severity.ERROR, "expired", f"expired on {end:%Y-%m-%d %H:%M} UTC"))
    elif end - now < EXPIRY_WARNING:
        days = (end - now).days
        problems.append(
            Problem(
                Severity.WARNING, "expires-soon", f"expires in {days} day(s), on {end:%Y-%m-%d}"
            )
        )
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < 2048:
        problems.append(Problem(Severity.ERROR, "weak-key", f"RSA key of {key.key_size} bits"))
    elif isinstance(key, ec.EllipticCurvePublicKey) and key.curve.key_size < 256:
        problems.append(Problem(Severity.ERROR, "weak-key", f"EC key on {key.curve.name}"))
    if ca_cert is not None:
        if not _is_ca(ca_cert):
            problems.append(
                Problem(Severity.ERROR, "ca-flags", "the given CA certificate is not a CA")
            )
        elif not _may_sign_certs(ca_cert):
            problems.append(
                Problem(Severity.ERROR, "ca-flags", "the given CA's key usage lacks keyCertSign")
            )
        if not ca_cert.not_valid_before_utc <= now < ca_cert.not_valid_after_utc:
            problems.append(
                Problem(
                    Severity.ERROR,
                    "ca-expired",
                    f"the CA is valid only {ca_cert.not_valid_before_utc:%Y-%m-%d} to "
                    f"{ca_cert.not_valid_after_utc:%Y-%m-%d}",
                )
            )
        if not _signed_by(cert, ca_cert):
            problems.append(
                Problem(
                    Severity.ERROR,
                    "chain",
                    "not signed by the given CA (issuer or signature mismatch)",
                )
            )
    if expect_usage is Usage.CA:
        if not _is_ca(cert):
            problems.append(
                Problem(Severity.ERROR, "ca-flags", "BasicConstraints ca=false: not a CA")
            )
        if not _may_sign_certs(cert):
            problems.append(Problem(Severity.ERROR, "key-usage", "key usage lacks keyCertSign"))
    if expect_usage in (Usage.SERVER, Usage.CLIENT):
        if _is_ca(cert):
            problems.append(
                Problem(Severity.ERROR, "ca-flags", "a leaf certificate must not be a CA")
            )
        key_usage = _key_usage(cert)
        if key_usage is not None and not key_usage.digital_signature:
            # An ECDHE-ECDSA handshake signs with the leaf key: digitalSignature is required.
            problems.append(
                Problem(Severity.ERROR, "key-usage", "key usage lacks digitalSignature")
            )
        wanted = (
            ExtendedKeyUsageOID.SERVER_AUTH
            if expect_usage is Usage.SERVER
            else ExtendedKeyUsageOID.CLIENT_AUTH
        )
        if wanted not in _ekus(cert):
            problems.append(
                Problem(
                    Severity.ERROR,
                    "key-usage",
                    f"extended key usage lacks {expect_usage.value} authentication",
                )
            )
    if expect_host is not None and not _san_covers(cert, expect_host):
        problems.append(
            Problem(
                Severity.ERROR, "san", f"subject alternative names do not cover {expect_host!r}"
            )
        )
    return problems


def _key_usage_names(usage: x509.KeyUsage | None) -> list[str]:
    if usage is None:
        return []
    flags = [
        ("digitalSignature", usage.digital_signature),
        ("keyEncipherment", usage.key_encipherment),
        ("keyAgreement", usage.key_agreement),
        ("keyCertSign", usage.key_cert_sign),
        ("cRLSign", usage.crl_sign),
    ]
    return [name for name, on in flags if on]


def describe(cert: x509.Certificate) -> list[tuple[str, str]]:
    """The fields a person wants to see, as (label, value) rows (``inspect`` prints them)."""
    rows = [
        ("subject", cert.subject.rfc4514_string()),
        ("issuer", cert.issuer.rfc4514_string()),
        ("serial", f"{cert.serial_number:x}"),
        ("valid from", f"{cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC"),
        ("valid until", f"{cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC"),
    ]
    key = cert.public_key()
    if isinstance(key, ec.EllipticCurvePublicKey):
        rows.append(("key", f"EC {key.curve.name}"))
    elif isinstance(key, rsa.RSAPublicKey):
        rows.append(("key", f"RSA {key.key_size}"))
    else:
        rows.append(("key", type(key).__name__))
    rows.append(("CA", "yes" if _is_ca(cert) else "no"))
    rows.append(("key usage", ", ".join(_key_usage_names(_key_usage(cert))) or "-"))
    ekus = sorted(oid._name for oid in _ekus(cert))
    rows.append(("extended key usage", ", ".join(ekus) or "-"))
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = [str(v) for v in san.get_values_for_type(x509.DNSName)]
        names += [str(v) for v in san.get_values_for_type(x509.IPAddress)]
        rows.append(("SAN", ", ".join(names)))
    except x509.ExtensionNotFound:
        rows.append(("SAN", "-"))
    return rows
