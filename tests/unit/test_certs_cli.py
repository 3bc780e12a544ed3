"""certs CLI end to end: ``python -m certs`` as a subprocess, files in tmp_path."""

from __future__ import annotations

import stat
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509

from certs.files import load_cert, write_issued
from certs.issue import build_ca

ROOT = Path(__file__).resolve().parents[2]


def _certs(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "certs", *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def _ok(*args: str | Path) -> str:
    result = _certs(*args)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return result.stdout


def _bad_input(*args: str | Path) -> str:
    """Runs a command that must fail with exit 2 and exactly one ``error:`` line."""
    result = _certs(*args)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stderr.startswith("error: ")
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr
    return result.stderr


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One CLI-made PKI: CA, server, device SN0001, client observer."""
    directory = tmp_path_factory.mktemp("cli") / "pki"
    out = _ok("init-ca", "--dir", directory, "--cn", "fleet CA", "--days", "100")
    assert f"wrote {directory / 'ca.pem'} and {directory / 'ca.key'}" in out
    _ok("issue-server", "--dir", directory, "--san", "broker.local", "--san", "10.0.0.5")
    _ok("issue-device", "SN0001", "--dir", directory, "--days", "60")
    out = _ok("issue-client", "observer", "--dir", directory)
    assert str(directory / "clients" / "observer.pem") in out
    return directory


def test_cli_writes_the_documented_layout_with_private_keys_0600(pki: Path) -> None:
    for stem in ("ca", "server", "devices/SN0001", "clients/observer"):
        assert load_cert(pki / f"{stem}.pem").issuer.rfc4514_string() == "CN=fleet CA"
        assert stat.S_IMODE((pki / f"{stem}.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((pki / "devices").stat().st_mode) == 0o700


def test_cli_inspect_shows_subject_sans_validity_key_and_usages(pki: Path) -> None:
    out = _ok("inspect", pki / "server.pem")
    assert "subject: CN=broker.local" in out
    assert "issuer: CN=fleet CA" in out
    assert "SAN: broker.local, 10.0.0.5" in out
    assert "key: EC secp256r1" in out
    assert "key usage: digitalSignature" in out
    assert "extended key usage: serverAuth" in out
    assert "valid until:" in out


def test_cli_check_exits_0_when_clean_and_1_on_error_findings(pki: Path) -> None:
    device = pki / "devices" / "SN0001.pem"
    out = _ok("check", device, "--ca", pki / "ca.pem", "--usage", "client")
    assert out.strip() == f"{device}: OK"
    wrong = _certs("check", pki / "server.pem", "--ca", pki / "ca.pem", "--host", "localhost")
    assert wrong.returncode == 1
    assert "error: san: subject alternative names do not cover 'localhost'" in wrong.stdout
    assert _certs("check", pki / "server.pem", "--host", "10.0.0.5").returncode == 0


def test_cli_acl_and_nats_accounts_print_config(pki: Path) -> None:
    acl = _ok("acl", "--observer", "backend")
    assert "user backend\ntopic read #\ntopic write devices/+/cmd\n" in acl
    assert "pattern write devices/%u/#\n" in acl
    nats = _ok("nats-accounts", "--serial", "SN0001", "--observer", "backend")
    assert 'user: "CN=SN0001"' in nats
    assert 'user: "CN=backend"' in nats


def test_cli_crl_revokes_the_given_certificate(pki: Path) -> None:
    out = _ok("crl", "--dir", pki, "--revoke", pki / "devices" / "SN0001.pem")
    assert out.strip() == f"wrote {pki / 'crl.pem'}"
    crl = x509.load_pem_x509_crl((pki / "crl.pem").read_bytes())
    serial = load_cert(pki / "devices" / "SN0001.pem").serial_number
    assert crl.get_revoked_certificate_by_serial_number(serial) is not None


def test_cli_refuses_to_overwrite_without_force(pki: Path) -> None:
    before = (pki / "devices" / "SN0001.key").read_bytes()
    assert "exists; use --force" in _bad_input("issue-device", "SN0001", "--dir", pki)
    assert (pki / "devices" / "SN0001.key").read_bytes() == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("issue-device", "sn-1", "--dir", "{tmp}"), "malformed device serial 'sn-1'"),
        (("issue-device", "SN0001", "--dir", "{tmp}/nowhere"), "no CA in"),
        (("check", "{tmp}/missing.pem"), "certificate not found"),
        (("init-ca", "--dir", "{tmp}", "--days", "0"), "at least 1 day"),
        (("frobnicate",), "invalid choice"),
    ],
    ids=["serial", "no-ca", "missing-file", "days", "unknown-command"],
)
def test_cli_bad_input_is_one_error_line_and_exit_2(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    assert message in _bad_input(*(a.replace("{tmp}", str(tmp_path)) for a in args))


def test_cli_refuses_to_issue_from_an_expired_ca(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    expired = build_ca("old CA", now - timedelta(days=10), days=1)
    write_issued(expired, tmp_path / "ca.pem", tmp_path / "ca.key")
    assert "expired on" in _bad_input("issue-device", "SN0001", "--dir", tmp_path)
    assert not (tmp_path / "devices").exists()
