"""certs: issuance, checks, ACL text and PEM files (pure core plus files in tmp_path)."""

from __future__ import annotations

import ast
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from certs.acl import mosquitto_acl, nats_accounts
from certs.checks import Severity, Usage, check_cert
from certs.errors import CertError
from certs.files import cert_pem, load_cert, load_issued, load_key, write_issued, write_pem
from certs.issue import (
    Issued,
    build_ca,
    issue_client_cert,
    issue_crl,
    issue_device_cert,
    issue_server_cert,
)
from certs.pki import issue_device_files, provision

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def ca() -> Issued:
    return build_ca("test CA", NOW, days=365)


@pytest.fixture(scope="module")
def other_ca() -> Issued:
    return build_ca("test CA", NOW, days=365)  # same name, different key


@pytest.fixture(scope="module")
def device(ca: Issued) -> Issued:
    return issue_device_cert(ca, "SN0001", NOW, days=90)


@pytest.fixture(scope="module")
def server(ca: Issued) -> Issued:
    return issue_server_cert(ca, now=NOW, days=90)


def _codes(cert: x509.Certificate, **kwargs: object) -> set[str]:
    return {p.code for p in check_cert(cert, NOW, **kwargs)}  # type: ignore[arg-type]


def _ext[T: x509.ExtensionType](cert: x509.Certificate, kind: type[T]) -> T:
    return cert.extensions.get_extension_for_class(kind).value


def _self_signed(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey, *exts: object) -> x509.Cert:
    raise NotImplementedError
