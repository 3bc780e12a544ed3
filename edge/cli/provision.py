"""Shell: ``python -m edge provision DIR``: everything one device and a local broker need.

    python -m edge provision DIR [--serial SN] [--broker HOST:PORT] [--ca-dir DIR]
                                 [--source sim|FILE|rtsp://...]

Writes into DIR (idempotent: an existing file is kept, never overwritten, and reported
as "kept"): ``pki/`` (CA, broker server certificate, device certificate, through the
``certs`` package, keys 0600 in 0700 folders), the app's Ed25519 signing pair for consent
receipts (``app.pub`` for the device; ``app-signing-key.PRIVATE-FOR-THE-APP.pem`` belongs
to the phone app and is not referenced by the device config), the audit trail's keys
(``state/audit-seal.key`` and ``state/device-signing.key`` for the device;
``audit-verify.PRIVATE-FOR-THE-VERIFIER.key``, the seal chain's first key, to move off the
device to whoever verifies the trail, and ``device-signing.pub`` for the backend that
keeps the signed checkpoints), ``mosquitto.conf`` and
``mosquitto.acl`` for a TLS broker on loopback, and ``agent.toml``, which
``python -m edge check-config`` accepts as it stands. Bad input: one ``error:`` line, exit 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from certs.acl import mosquitto_acl
from certs.errors import CertError
from certs.files import write_pem
from certs.issue import validate_serial
from certs.pki import Pki, provision
from edge.shell.seal_key import SEAL_FILE, SIGNING_FILE, provision_keys

EXIT_BAD_INPUT = 2
APP_PRIVATE = "app-signing-key.PRIVATE-FOR-THE-APP.pem"


class _OneLineParser(argparse.ArgumentParser):
    """A usage error is one ``error: ...`` line and exit 2, like ``python -m certs``."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"error: {self.prog}: {message} (see --help)\n")
        sys.exit(EXIT_BAD_INPUT)


def _endpoint(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise CertError(f"--broker {text!r}: expected HOST:PORT, e.g. 127.0.0.1:8883")
    return host, int(port)


def _write_text(path: Path, text: str, private: bool, report: list[str]) -> None:
    """Write ``path`` once; a second run keeps it (so mtimes do not move)."""
    if path.exists():
        report.append(f"kept  {path}")
        return
    write_pem(path, text.encode(), private=private)
    report.append(f"wrote {path}")


def _mosquitto_conf(pki: Pki, acl: Path, host: str, port: int) -> str:
    return (
        "# Written by python -m edge provision. Run: mosquitto -c THIS_FILE\n"
        "# A local test broker: as root, mosquitto would drop to user 'mosquitto', which\n"
        "# cannot read these 0700 folders, so provision run as root keeps it root.\n"
        + ("user root\n" if os.geteuid() == 0 else "")
        + "per_listener_settings false\n"
        "allow_anonymous false\n"
        "set_tcp_nodelay true\n"
        f"listener {port} {host}\n"
        f"cafile {pki.ca_cert.resolve()}\n"
        f"certfile {pki.server_cert.resolve()}\n"
        f"keyfile {pki.server_key.resolve()}\n"
        "require_certificate true\n"
        "use_identity_as_username true\n"
        f"acl_file {acl.resolve()}\n"
    )


def _agent_toml(serial: str, host: str, port: int, pki_dir: Path, out: Path, source: str) -> str:
    def rel(path: Path) -> str:
        try:
            return str(path.resolve().relative_to(out.resolve()))
        except ValueError:
            return str(path.resolve())

    return f"""# Written by python -m edge provision (commented reference: examples/agent.toml).
[device]
serial = "{serial}"
model = "DB-200"
firmware_version = "1.4.2"
mac_address = "02:00:00:00:00:01"
device_name = "Front door"
time_zone = "Europe/Warsaw"
state_dir = "state"

[policy]
version = "en-2023-01-10"
app_public_key = "app.pub"

[broker]
endpoints = ["{host}:{port}"]

[tls]
ca = "{rel(pki_dir / "ca.pem")}"
cert = "{rel(pki_dir / "devices" / f"{serial}.pem")}"
key = "{rel(pki_dir / "devices" / f"{serial}.key")}"

[media]
source = "{source}"   # "sim", a video file path, or rtsp://...
"""


def provision_device(
    out: Path, serial: str, host: str, port: int, ca_dir: Path | None, source: str = "sim"
) -> list[str]:
    """Create (or keep) every file; returns one line per file for the user.

    Raises:
        CertError: a bad serial, an unusable CA, an unwritable folder.
    """
    validate_serial(serial)
    pki_dir = ca_dir if ca_dir is not None else out / "pki"
    if ca_dir is not None and not (ca_dir / "ca.pem").exists():
        raise CertError(f"--ca-dir {ca_dir}: no ca.pem there")
    if not out.exists():
        out.mkdir(parents=True, mode=0o700)
        os.chmod(out, 0o700)  # the umask must not widen it: it holds the app's private key
    report: list[str] = []
    names = [
        pki_dir / "ca.pem",
        pki_dir / "server.pem",
        pki_dir / "devices" / f"{serial}.pem",
    ]
    before = {p: p.exists() for p in names}
    pki = provision(pki_dir, [serial], observers=(), days=825)
    report += [f"{'kept ' if before[p] else 'wrote'} {p} (+ key, mode 0600)" for p in names]
    private = out / APP_PRIVATE
    public = out / "app.pub"
    if private.exists():
        report.append(f"kept  {private}")
        loaded = serialization.load_pem_private_key(private.read_bytes(), password=None)
        if not isinstance(loaded, ed25519.Ed25519PrivateKey):
            raise CertError(f"{private} is not an Ed25519 private key")
        key = loaded
    else:
        key = ed25519.Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        write_pem(private, pem, private=True)
        report.append(f"wrote {private} (the APP's key: copy it to the app, not the device)")
    pub = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    _write_text(public, pub.decode(), False, report)  # from the app's key, if it was lost
    state = out / "state"  # agent.toml's state_dir
    had_keys = (state / SEAL_FILE).exists()
    verify, signing_pub = provision_keys(state, out)
    if had_keys:
        report.append(f"kept  {state / SEAL_FILE} and {state / SIGNING_FILE}")
    else:
        report.append(f"wrote {state / SEAL_FILE} (the audit seal key; it evolves, mode 0600)")
        report.append(f"wrote {verify} (K0: move it to the privacy officer, off the device)")
        report.append(f"wrote {signing_pub} (checkpoints' public key: give it to the backend)")
    acl = out / "mosquitto.acl"
    _write_text(acl, mosquitto_acl(["observer"]), False, report)
    _write_text(out / "mosquitto.conf", _mosquitto_conf(pki, acl, host, port), False, report)
    _write_text(
        out / "agent.toml", _agent_toml(serial, host, port, pki_dir, out, source), False, report
    )
    return report


def main(argv: Sequence[str]) -> int:
    """Entry point of ``python -m edge provision``; CertError becomes one line and exit 2."""
    parser = _OneLineParser(prog="python -m edge provision", description=__doc__)
    parser.add_argument("dir", type=Path)
    parser.add_argument("--serial", default="SN0001")
    parser.add_argument("--broker", default="127.0.0.1:8883")
    parser.add_argument("--ca-dir", type=Path, default=None)
    parser.add_argument("--source", default="sim", help="sim, a video file or an RTSP URL")
    args = parser.parse_args(argv)
    try:
        host, port = _endpoint(args.broker)
        if '"' in args.source or "\n" in args.source:
            raise CertError("--source: no quotes or new lines")
        lines = provision_device(args.dir, args.serial, host, port, args.ca_dir, args.source)
    except CertError as err:
        sys.stderr.write(f"error: {err}\n")
        return EXIT_BAD_INPUT
    conf, agent = args.dir / "mosquitto.conf", args.dir / "agent.toml"
    lines.append(f"next: mosquitto -c {conf} & python -m edge run --config {agent}")
    sys.stdout.write("\n".join(lines) + "\n")
    return 0
