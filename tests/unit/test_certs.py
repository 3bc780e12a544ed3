"""certs: issuance, checks, ACL text, PEM files and provisioning (files only in tmp_path)."""

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
PURE_CERT_MODULES = ("certs/issue.py", "certs/checks.py", "certs/acl.py")


@pytest.fixture(scope="module")
def ca() -> Issued:
    return build_ca("test CA", NOW, days=365)


@pytest.fixture(scope="module")
def other_ca() -> Issued:
    return build_ca("test CA", NOW, days=365)  # same subject as `ca`, different key


@pytest.fixture(scope="module")
def device(ca: Issued) -> Issued:
    return issue_device_cert(ca, "SN0001", NOW, days=90)


@pytest.fixture(scope="module")
def server(ca: Issued) -> Issued:
    return issue_server_cert(ca, now=NOW, days=90)


def _codes(
    cert: x509.Certificate,
    ca_cert: x509.Certificate | None = None,
    expect_host: str | None = None,
    expect_usage: Usage | None = None,
    now: datetime = NOW,
) -> set[str]:
    return {p.code for p in check_cert(cert, now, ca_cert, expect_host, expect_usage)}


def _signature_verifies(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """Chain check done by hand (no ssl, no check_cert): ECDSA over the TBS bytes."""
    public = issuer.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    algorithm = cert.signature_hash_algorithm
    assert algorithm is not None
    try:
        public.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(algorithm))
    except Exception:  # noqa: BLE001 - InvalidSignature is the expected "no" answer
        return False
    return True


def _custom_cert(
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey,
    is_ca: bool,
    key_usage: x509.KeyUsage | None,
) -> x509.Certificate:
    """A self-signed certificate with exactly the flags a test wants (bad ones included)."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "custom")])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=90))
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    )
    if key_usage is not None:
        builder = builder.add_extension(key_usage, critical=True)
    return builder.sign(key, hashes.SHA256())


def _key_usage(digital_signature: bool, key_cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=key_cert_sign,
        crl_sign=key_cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


# --- issuance ---------------------------------------------------------------------------------


def test_build_ca_is_self_signed_p256_ca_that_may_sign(ca: Issued) -> None:
    cert = ca.cert
    assert cert.subject == cert.issuer
    assert _signature_verifies(cert, cert)
    assert isinstance(ca.key, ec.EllipticCurvePrivateKey)
    assert ca.key.curve.name == "secp256r1"
    constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical
    assert constraints.value.ca
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign
    assert usage.crl_sign
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == timedelta(days=365)
    assert check_cert(cert, NOW, expect_usage=Usage.CA) == []


def test_issue_device_cert_has_serial_cn_client_auth_and_ca_chain(
    ca: Issued, device: Issued
) -> None:
    cert = device.cert
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "SN0001"
    assert cert.issuer == ca.cert.subject
    assert list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.CLIENT_AUTH
    ]
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert cert.extensions.get_extension_for_class(x509.KeyUsage).value.digital_signature
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ca_ski = ca.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == ca_ski.digest
    ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert ski == x509.SubjectKeyIdentifier.from_public_key(device.key.public_key())
    assert _signature_verifies(cert, ca.cert)
    assert check_cert(cert, NOW, ca.cert, expect_usage=Usage.CLIENT) == []


def test_issue_device_cert_does_not_verify_against_another_ca(
    device: Issued, other_ca: Issued
) -> None:
    assert not _signature_verifies(device.cert, other_ca.cert)


def test_issue_server_cert_covers_localhost_and_loopback_ips_by_default(server: Issued) -> None:
    san = server.cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert {str(ip) for ip in san.get_values_for_type(x509.IPAddress)} == {"127.0.0.1", "::1"}
    assert list(server.cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.SERVER_AUTH
    ]


def test_issue_client_cert_uses_name_as_cn(ca: Issued) -> None:
    cert = issue_client_cert(ca, "observer", NOW, days=90).cert
    assert cert.subject.rfc4514_string() == "CN=observer"
    assert check_cert(cert, NOW, ca.cert, expect_usage=Usage.CLIENT) == []


@pytest.mark.parametrize(
    "serial",
    ["sn0001", "SN", "SN/0001", "SN+1", "SN#1", "", " SN0001", "-SN001", "S" * 33, "SN 01"],
)
def test_issue_device_cert_rejects_malformed_serial(ca: Issued, serial: str) -> None:
    with pytest.raises(CertError, match="malformed device serial") as info:
        issue_device_cert(ca, serial, NOW)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("serial", ["SN1", "ABC_123-X", "0" * 32])
def test_issue_device_cert_accepts_serials_at_the_pattern_edges(ca: Issued, serial: str) -> None:
    assert issue_device_cert(ca, serial, NOW).cert.subject.rfc4514_string() == f"CN={serial}"


@pytest.mark.parametrize("name", ["", "a/b", "a b", "#", "+"])
def test_issue_client_cert_rejects_malformed_name(ca: Issued, name: str) -> None:
    with pytest.raises(CertError, match="malformed identity name"):
        issue_client_cert(ca, name, NOW)


def test_issue_refuses_an_expired_ca() -> None:
    old = build_ca("old CA", NOW - timedelta(days=10), days=1)
    with pytest.raises(CertError, match="CA expired"):
        issue_device_cert(old, "SN0001", NOW)
    with pytest.raises(CertError, match="CA expired"):
        issue_crl(old, [1], NOW)


def test_issue_refuses_a_ca_key_that_is_not_the_cas(ca: Issued, other_ca: Issued) -> None:
    with pytest.raises(CertError, match="does not belong"):
        issue_device_cert(Issued(other_ca.key, ca.cert), "SN0001", NOW)


def test_issue_refuses_a_leaf_as_ca(ca: Issued, device: Issued) -> None:
    with pytest.raises(CertError, match="not a CA"):
        issue_device_cert(device, "SN0002", NOW)


@pytest.mark.parametrize(
    ("now", "days", "message"),
    [(NOW.replace(tzinfo=None), 1, "timezone-aware"), (NOW, 0, "at least 1 day")],
)
def test_issue_rejects_bad_validity(ca: Issued, now: datetime, days: int, message: str) -> None:
    with pytest.raises(CertError, match=message):
        issue_device_cert(ca, "SN0001", now, days=days)


@pytest.mark.parametrize("san", ["", "bad host", "a/b", "kamera.prüfung"])
def test_issue_server_cert_rejects_malformed_san(ca: Issued, san: str) -> None:
    with pytest.raises(CertError, match="malformed host name"):
        issue_server_cert(ca, [san], NOW)


def test_issue_crl_is_signed_by_ca_and_lists_revoked(ca: Issued, device: Issued) -> None:
    crl = issue_crl(ca, [device.cert.serial_number], NOW, days=7)
    assert crl.is_signature_valid(ca.key.public_key())
    assert crl.issuer == ca.cert.subject
    revoked = crl.get_revoked_certificate_by_serial_number(device.cert.serial_number)
    assert revoked is not None
    assert crl.get_revoked_certificate_by_serial_number(device.cert.serial_number + 1) is None
    assert crl.next_update_utc == NOW + timedelta(days=7)


# --- checks -----------------------------------------------------------------------------------


def test_check_cert_reports_expired_cert(ca: Issued) -> None:
    expired = issue_device_cert(ca, "SN0001", NOW, days=1, not_before=NOW - timedelta(days=10)).cert
    problems = check_cert(expired, NOW, ca.cert)
    assert [(p.severity, p.code) for p in problems] == [(Severity.ERROR, "expired")]


def test_check_cert_reports_not_yet_valid_cert(ca: Issued) -> None:
    future = issue_device_cert(ca, "SN0001", NOW, days=90, not_before=NOW + timedelta(days=1))
    assert _codes(future.cert) == {"not-yet-valid"}


def test_check_cert_warns_when_expiry_is_within_30_days(ca: Issued) -> None:
    cert = issue_device_cert(ca, "SN0001", NOW, days=10).cert
    problems = check_cert(cert, NOW, ca.cert)
    assert [(p.severity, p.code) for p in problems] == [(Severity.WARNING, "expires-soon")]
    assert _codes(issue_device_cert(ca, "SN0001", NOW, days=31).cert) == set()


def test_check_cert_reports_chain_to_another_ca(device: Issued, other_ca: Issued) -> None:
    assert _codes(device.cert, other_ca.cert) == {"chain"}


def test_check_cert_reports_a_leaf_given_as_ca(device: Issued, server: Issued) -> None:
    assert _codes(device.cert, server.cert) == {"ca-flags", "chain"}


def test_check_cert_reports_an_expired_ca(ca: Issued, device: Issued) -> None:
    later = ca.cert.not_valid_after_utc + timedelta(days=1)
    codes = {p.code for p in check_cert(device.cert, later, ca.cert)}
    assert codes == {"expired", "ca-expired"}


@pytest.mark.parametrize(
    ("host", "covered"),
    [
        ("localhost", True),
        ("LOCALHOST", True),
        ("127.0.0.1", True),
        ("::1", True),
        ("0:0:0:0:0:0:0:1", True),
        ("127.0.0.2", False),
        ("broker.example", False),
    ],
)
def test_check_cert_san_must_cover_host(server: Issued, host: str, covered: bool) -> None:
    assert ("san" not in _codes(server.cert, expect_host=host)) is covered


def test_check_cert_san_ignores_cn_without_san(device: Issued) -> None:
    assert _codes(device.cert, expect_host="SN0001") == {"san"}


@pytest.mark.parametrize(
    ("which", "usage", "codes"),
    [
        ("device", Usage.SERVER, {"key-usage"}),
        ("server", Usage.CLIENT, {"key-usage"}),
        ("server", Usage.SERVER, set()),
        ("ca", Usage.CLIENT, {"ca-flags", "key-usage"}),
        ("device", Usage.CA, {"ca-flags", "key-usage"}),
    ],
)
def test_check_cert_usage_must_match(
    ca: Issued, device: Issued, server: Issued, which: str, usage: Usage, codes: set[str]
) -> None:
    cert = {"ca": ca, "device": device, "server": server}[which].cert
    assert _codes(cert, expect_usage=usage) == codes


def test_check_cert_reports_leaf_without_digital_signature() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _custom_cert(key, is_ca=False, key_usage=_key_usage(False, False))
    assert _codes(cert, expect_usage=Usage.CLIENT) == {"key-usage"}
    no_key_usage = _custom_cert(key, is_ca=False, key_usage=None)
    assert _codes(no_key_usage, expect_usage=Usage.CLIENT) == set()


def test_check_cert_reports_ca_without_cert_sign(device: Issued) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = _custom_cert(key, is_ca=True, key_usage=_key_usage(True, False))
    assert _codes(ca_cert, expect_usage=Usage.CA) == {"key-usage"}
    assert "ca-flags" in _codes(device.cert, ca_cert)


@pytest.mark.parametrize(
    ("key", "weak"),
    [
        (rsa.generate_private_key(public_exponent=65537, key_size=1024), True),  # noqa: S505 - weak on purpose
        (ec.generate_private_key(ec.SECP256R1()), False),
    ],
    ids=["rsa1024", "p256"],
)
def test_check_cert_reports_weak_key(
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey, weak: bool
) -> None:
    cert = _custom_cert(key, is_ca=False, key_usage=_key_usage(True, False))
    assert ("weak-key" in _codes(cert)) is weak


def test_problem_str_is_one_line_with_severity_and_code(ca: Issued) -> None:
    expired = issue_device_cert(ca, "SN0001", NOW, days=1, not_before=NOW - timedelta(days=3))
    (problem,) = check_cert(expired.cert, NOW)
    assert str(problem).startswith("error: expired: expired on ")
    assert "\n" not in str(problem)


# --- ACL --------------------------------------------------------------------------------------


def test_mosquitto_acl_confines_devices_and_lets_observers_read_all() -> None:
    lines = [line for line in mosquitto_acl(["observer", "backend"]).splitlines() if line]
    body = [line for line in lines if not line.startswith("#")]
    assert body == [
        "user observer",
        "topic read #",
        "topic write devices/+/cmd",
        "user backend",
        "topic read #",
        "topic write devices/+/cmd",
        "pattern write devices/%u/#",
        "pattern read devices/%u/cmd",
        "pattern read devices/%u/cmd/#",
    ]


@pytest.mark.parametrize(
    ("observers", "prefix"),
    [(["bad/name"], "devices"), (["observer"], "devices/#"), (["observer"], "")],
)
def test_mosquitto_acl_rejects_malformed_names_and_prefixes(
    observers: list[str], prefix: str
) -> None:
    with pytest.raises(CertError, match="malformed"):
        mosquitto_acl(observers, topic_prefix=prefix)


def test_nats_accounts_maps_mqtt_topics_to_subjects() -> None:
    text = nats_accounts(["SN0001", "SN0002"], ["observer"], topic_prefix="fleet/devices")
    assert text.startswith("authorization {\n  users = [\n")
    (sn1,) = [line for line in text.splitlines() if '"CN=SN0001"' in line]
    assert 'publish: { allow: ["fleet.devices.SN0001", "fleet.devices.SN0001.>"] }' in sn1
    assert (
        'subscribe: { allow: ["fleet.devices.SN0001.cmd", "fleet.devices.SN0001.cmd.>", '
        '"$MQTT.sub.>"] }'
    ) in sn1
    assert "SN0002" not in sn1
    (observer,) = [line for line in text.splitlines() if '"CN=observer"' in line]
    assert '"fleet.devices.*.cmd"' in observer
    assert 'subscribe: { allow: [">"] }' in observer


def test_nats_accounts_rejects_malformed_serial() -> None:
    with pytest.raises(CertError, match="malformed device serial"):
        nats_accounts(["SN.1"], [])


# --- files ------------------------------------------------------------------------------------


def test_write_pem_key_is_0600_in_new_0700_folders(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "x.key"
    write_pem(path, b"secret", private=True)
    assert path.read_bytes() == b"secret"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "a").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "a" / "b").stat().st_mode) == 0o700
    write_pem(tmp_path / "a" / "x.pem", b"public", private=False)
    assert stat.S_IMODE((tmp_path / "a" / "x.pem").stat().st_mode) == 0o644


def test_write_pem_refuses_overwrite_unless_forced(tmp_path: Path) -> None:
    path = tmp_path / "x.key"
    path.write_bytes(b"old")
    path.chmod(0o644)
    with pytest.raises(CertError, match="exists; use --force"):
        write_pem(path, b"new", private=True)
    assert path.read_bytes() == b"old"
    write_pem(path, b"new", private=True, force=True)
    assert path.read_bytes() == b"new"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_write_pem_under_a_file_is_a_cert_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(CertError, match="cannot write"):
        write_pem(tmp_path / "file" / "x.key", b"k", private=True)


def test_write_issued_writes_nothing_when_either_file_exists(
    tmp_path: Path, device: Issued
) -> None:
    (tmp_path / "d.pem").write_text("keep")
    with pytest.raises(CertError, match="exists"):
        write_issued(device, tmp_path / "d.pem", tmp_path / "d.key")
    assert not (tmp_path / "d.key").exists()


def test_load_round_trips_and_rejects_missing_or_malformed(
    tmp_path: Path, ca: Issued, device: Issued
) -> None:
    write_issued(device, tmp_path / "d.pem", tmp_path / "d.key")
    loaded = load_issued(tmp_path / "d.pem", tmp_path / "d.key")
    assert loaded.cert == device.cert
    assert loaded.key.private_numbers() == device.key.private_numbers()
    with pytest.raises(CertError, match="certificate not found"):
        load_cert(tmp_path / "missing.pem")
    with pytest.raises(CertError, match="key not found"):
        load_key(tmp_path / "missing.key")
    with pytest.raises(CertError, match="not a PEM certificate"):
        load_cert(tmp_path / "d.key")
    with pytest.raises(CertError, match="not an unencrypted PEM private key"):
        load_key(tmp_path / "d.pem")
    write_pem(tmp_path / "ca.pem", cert_pem(ca.cert), private=False)
    with pytest.raises(CertError, match="is not the key of"):
        load_issued(tmp_path / "ca.pem", tmp_path / "d.key")


# --- provisioning -----------------------------------------------------------------------------


def test_provision_writes_layout_and_chains_to_its_ca(tmp_path: Path) -> None:
    pki = provision(tmp_path / "pki", ["SN0001", "SN0002"], now=NOW, days=60)
    assert pki.ca_cert == tmp_path / "pki" / "ca.pem"
    assert pki.server_key == tmp_path / "pki" / "server.key"
    assert pki.devices["SN0002"].cert == tmp_path / "pki" / "devices" / "SN0002.pem"
    assert pki.observers["observer"].key == tmp_path / "pki" / "clients" / "observer.key"
    ca_cert = load_cert(pki.ca_cert)
    for serial, ident in pki.devices.items():
        cert = load_cert(ident.cert)
        assert cert.subject.rfc4514_string() == f"CN={serial}"
        assert check_cert(cert, NOW, ca_cert, expect_usage=Usage.CLIENT) == []
        assert stat.S_IMODE(ident.key.stat().st_mode) == 0o600
    server = load_cert(pki.server_cert)
    assert check_cert(server, NOW, ca_cert, "127.0.0.1", Usage.SERVER) == []
    assert stat.S_IMODE((tmp_path / "pki" / "devices").stat().st_mode) == 0o700


def test_provision_twice_reuses_files_and_force_reissues(tmp_path: Path) -> None:
    first = provision(tmp_path, ["SN0001"], now=NOW)
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    again = provision(tmp_path, ["SN0001"], now=NOW)
    assert again == first
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before
    provision(tmp_path, ["SN0001"], now=NOW, force=True)
    assert first.ca_cert.read_bytes() != before[first.ca_cert]
    assert first.devices["SN0001"].key.read_bytes() != before[first.devices["SN0001"].key]


def test_issue_device_files_makes_an_expired_cert_for_tests(tmp_path: Path) -> None:
    pki = provision(tmp_path, [], observers=(), now=NOW)
    ident = issue_device_files(pki, "SN0009", now=NOW, days=1, not_before=NOW - timedelta(days=10))
    assert pki.devices["SN0009"] == ident
    assert _codes(load_cert(ident.cert), load_cert(pki.ca_cert)) == {"expired"}


def test_provision_rejects_malformed_serial_before_writing_it(tmp_path: Path) -> None:
    with pytest.raises(CertError, match="malformed device serial"):
        provision(tmp_path, ["bad serial"], now=NOW)
    assert not (tmp_path / "devices").exists()


# --- architecture -----------------------------------------------------------------------------


@pytest.mark.parametrize("module", PURE_CERT_MODULES)
def test_pure_certs_module_does_no_io_and_reads_no_clock(module: str) -> None:
    tree = ast.parse((ROOT / module).read_text())
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert not imported & {"os", "pathlib", "socket", "ssl", "subprocess", "time", "shutil"}
    calls = {
        node.func.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
    }
    assert not calls & {"now", "today", "utcnow", "open", "read_bytes", "write_bytes"}
