"""Shell: ``python -m certs``: make and check the certificates of a fleet.

    python -m certs init-ca --dir DIR [--cn NAME] [--days N] [--force]
    python -m certs issue-server --dir DIR [--san HOST ...] [--days N] [--force]
    python -m certs issue-device SERIAL --dir DIR [--days N] [--force]
    python -m certs issue-client NAME --dir DIR [--days N] [--force]     (admin / observer)
    python -m certs inspect FILE
    python -m certs check FILE [--ca FILE] [--host HOST] [--usage server|client|ca]
    python -m certs acl [--observer NAME ...]                             (Mosquitto acl_file)
    python -m certs nats-accounts --serial SN ... [--observer NAME ...]   (NATS users)
    python -m certs crl --dir DIR --revoke CERT ...

Files in DIR: ca.pem/ca.key, server.pem/server.key, devices/<SERIAL>.pem/.key,
clients/<NAME>.pem/.key, crl.pem. Keys are 0600 in 0700 folders; nothing is overwritten
without --force. Bad input prints one line ``error: ...`` and exits 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import NoReturn

from certs.acl import mosquitto_acl, nats_accounts
from certs.checks import Severity, Usage, check_cert, describe
from certs.errors import CertError
from certs.files import load_cert, load_issued, write_issued
from certs.issue import (
    DEFAULT_SERVER_SANS,
    Issued,
    build_ca,
    issue_client_cert,
    issue_device_cert,
    issue_server_cert,
    validate_serial,
)
from certs.pki import Pki, revoke

EXIT_BAD_INPUT = 2
CA_DAYS = 3650
LEAF_DAYS = 825  # the CA/Browser Forum's old ceiling; rotate long before it


class _OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one ``error: ...`` line and exit 2, like every other."""

    def error(self, message: str) -> NoReturn:
        print(f"error: {self.prog}: {message} (see --help)", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)


def _parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(prog="python -m certs", description="Fleet certificate tooling.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_OneLineParser)

    def with_dir(p: argparse.ArgumentParser, days: int = LEAF_DAYS) -> None:
        p.add_argument("--dir", type=Path, required=True, help="the PKI folder")
        p.add_argument("--days", type=int, default=days, help=f"validity in days ({days})")
        p.add_argument("--force", action="store_true", help="overwrite existing files")

    p = sub.add_parser("init-ca", help="create a CA")
    with_dir(p, CA_DAYS)
    p.add_argument("--cn", default="edge fleet CA")
    p = sub.add_parser("issue-server", help="issue the broker's certificate")
    with_dir(p)
    p.add_argument("--san", action="append", help="host name or IP (repeatable)")
    p = sub.add_parser("issue-device", help="issue a device certificate (CN = serial)")
    p.add_argument("serial")
    with_dir(p)
    p = sub.add_parser("issue-client", help="issue an admin/observer certificate")
    p.add_argument("name")
    with_dir(p)
    p = sub.add_parser("inspect", help="show a certificate")
    p.add_argument("file", type=Path)
    p = sub.add_parser("check", help="check a certificate; exit 1 on any error finding")
    p.add_argument("file", type=Path)
    p.add_argument("--ca", type=Path)
    p.add_argument("--host")
    p.add_argument("--usage", choices=[u.value for u in Usage])
    p = sub.add_parser("acl", help="print a Mosquitto ACL for devices and observers")
    p.add_argument("--observer", action="append", default=None)
    p = sub.add_parser("nats-accounts", help="print NATS users/permissions")
    p.add_argument("--serial", action="append", required=True)
    p.add_argument("--observer", action="append", default=None)
    p = sub.add_parser("crl", help="write crl.pem revoking certificates")
    p.add_argument("--dir", type=Path, required=True)
    p.add_argument("--revoke", type=Path, action="append", required=True)
    return parser


def _ca(directory: Path, now: datetime) -> Issued:
    """The CA of ``directory``, refused with a hint if missing and refused if expired."""
    cert, key = directory / "ca.pem", directory / "ca.key"
    if not cert.exists():
        raise CertError(f"no CA in {directory} (run: python -m certs init-ca --dir {directory})")
    ca = load_issued(cert, key)
    if now >= ca.cert.not_valid_after_utc:
        raise CertError(f"the CA in {directory} expired on {ca.cert.not_valid_after_utc:%Y-%m-%d}")
    return ca


def _write(issued: Issued, directory: Path, stem: str, force: bool) -> None:
    """Write ``<stem>.pem``/``<stem>.key`` and say so on stdout."""
    cert, key = directory / f"{stem}.pem", directory / f"{stem}.key"
    write_issued(issued, cert, key, force=force)
    print(f"wrote {cert} and {key} (key mode 0600)")


def run(argv: Sequence[str], now: datetime) -> int:
    """Execute one command at time ``now``; 0 done, 1 ``check`` found errors.

    Raises:
        CertError: bad input; ``main`` turns it into one line and exit code 2.
    """
    args = _parser().parse_args(argv)
    command: str = args.command
    if command == "init-ca":
        _write(build_ca(args.cn, now, args.days), args.dir, "ca", args.force)
    elif command == "issue-server":
        sans = args.san or list(DEFAULT_SERVER_SANS)
        _write(
            issue_server_cert(_ca(args.dir, now), sans, now, args.days),
            args.dir,
            "server",
            args.force,
        )
    elif command == "issue-device":
        validate_serial(args.serial)
        issued = issue_device_cert(_ca(args.dir, now), args.serial, now, args.days)
        _write(issued, args.dir / "devices", args.serial, args.force)
    elif command == "issue-client":
        issued = issue_client_cert(_ca(args.dir, now), args.name, now, args.days)
        _write(issued, args.dir / "clients", args.name, args.force)
    elif command == "inspect":
        for label, value in describe(load_cert(args.file)):
            print(f"{label:>20}: {value}")
    elif command == "check":
        cert = load_cert(args.file)
        ca = load_cert(args.ca) if args.ca else None
        usage = Usage(args.usage) if args.usage else None
        problems = check_cert(cert, now, ca, args.host, usage)
        for problem in problems:
            print(problem)
        if not problems:
            print(f"{args.file}: OK")
        return 1 if any(p.severity is Severity.ERROR for p in problems) else 0
    elif command == "acl":
        print(mosquitto_acl(args.observer or ["observer"]), end="")
    elif command == "nats-accounts":
        print(nats_accounts(args.serial, args.observer or ["observer"]), end="")
    elif command == "crl":
        pki = Pki(
            args.dir,
            args.dir / "ca.pem",
            args.dir / "ca.key",
            args.dir / "server.pem",
            args.dir / "server.key",
        )
        _ca(args.dir, now)
        print(f"wrote {revoke(pki, args.revoke, now)}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """The entry point: the clock is read here, once, and CertError becomes exit 2."""
    try:
        return run(sys.argv[1:] if argv is None else argv, datetime.now(UTC))
    except CertError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
