"""Shell: ``python -m firmware_sim list | run | demo | audit | fleet``.

    list                         the scenarios
    run --scenario NAME --policy VERSION [--consent P,...] [--audio on|off] [--serial SN]
        [--broker HOST:PORT --ca FILE --cert FILE --key FILE
         [--backend-cert FILE --backend-key FILE]] [--speed N] [--images DIR]
                                 the real agent for one simulated device; without --broker
                                 a local mutual-TLS Mosquitto with throwaway certificates.
                                 With --broker, the backend identity (allowed to read
                                 devices/# and write devices/SN/cmd) sends the app's
                                 commands and observes; a scenario with app steps refuses
                                 to run without it
    demo [--out DIR]             the doorbell through the scenarios under 2020 and 2023
    audit [--scenarios A,B] [--versions V,...]
                                 the leak audit over scenarios x versions x consent x audio
    fleet --devices N [--messages M] [--broker ...]
                                 N devices, each with its own certificate, on one broker

Bad options print one line ``error: ...`` and exit 2.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from certs.errors import CertError
from certs.pki import Identity, Pki, provision
from edge.errors import EdgeError
from edge.seal import check_against_checkpoints, parse_checkpoint, verify_seals
from edge.shell.audit_log import read_trail
from edge.shell.shipped import list_versions, load_manifest
from firmware_sim.broker import BrokerTls, MosquittoBroker, start_mosquitto
from firmware_sim.device import SimDevice
from firmware_sim.errors import SimError
from firmware_sim.harness import (
    AgentHarness,
    DeviceSetup,
    SimClock,
    agent_config,
    backend_observer,
    prepare_device,
)
from firmware_sim.leak_audit import AuditSummary, audit_run
from firmware_sim.link import LinkRelay
from firmware_sim.photos import STREETS, load_images
from firmware_sim.report import summarise, summary_text, write_html
from firmware_sim.runner import NoBackend, RunRecord, run_scenario, send_command
from firmware_sim.scenarios import ALL_CONSENTS, SCENARIOS, Scenario, get_scenario
from firmware_sim.scene import RenderedFrame

EXIT_BAD_INPUT = 2
TARGET_SCENARIO_S = 3.0


def say(text: str) -> None:
    print(f"\033[1m[sim]\033[0m {text}", flush=True)


class Status:
    """One progress line, rewritten in place on a terminal."""

    def __init__(self) -> None:
        self.tty = sys.stdout.isatty()
        self.last = ""

    def __call__(self, text: str) -> None:
        if self.tty:
            print(f"\r\033[K  {text[:110]}", end="", flush=True)
        self.last = text

    def done(self, text: str) -> None:
        if self.tty:
            print("\r\033[K", end="")
        print(f"  {text}", flush=True)


@contextlib.contextmanager
def local_world(workdir: Path, serials: Sequence[str]) -> Iterator[tuple[Pki, MosquittoBroker]]:
    """Throwaway certificates and a local mutual-TLS Mosquitto on a free loopback port."""
    pki = provision(workdir / "pki", serials, observers=("observer",))
    broker = start_mosquitto(
        workdir / "broker", BrokerTls(pki.ca_cert, pki.server_cert, pki.server_key)
    )
    try:
        yield pki, broker
    finally:
        broker.stop()


def speed_for(name: str, wanted: float | None) -> float:
    if wanted:
        return wanted
    return max(1.0, get_scenario(name).duration_s / TARGET_SCENARIO_S)


# -- run ----------------------------------------------------------------------------------


def cmd_run(args: argparse.Namespace) -> int:
    scenario = get_scenario(args.scenario)
    if args.policy not in list_versions():
        raise SimError(
            f"unknown policy version {args.policy!r} (known: {', '.join(list_versions())})"
        )
    consents = tuple(p for p in (args.consent or "").split(",") if p)
    unknown = set(consents) - set(ALL_CONSENTS)
    if unknown:
        raise SimError(
            f"--consent: unknown purpose(s) {sorted(unknown)} (known: {', '.join(ALL_CONSENTS)})"
        )
    audio = None if args.audio is None else args.audio == "on"
    if (args.backend_cert or args.backend_key) and not args.broker:
        raise SimError("--backend-cert/--backend-key go with --broker (a local run has its own)")
    images = load_images(Path(args.images)) if args.images else []
    with tempfile.TemporaryDirectory(prefix="firmware-sim-") as tmp:
        work = Path(tmp)
        if args.broker:
            host, _, port = args.broker.rpartition(":")
            if not port.isdigit():
                raise SimError(f"--broker: expected HOST:PORT, got {args.broker!r}")
            for option in ("ca", "cert", "key"):
                if not getattr(args, option):
                    raise SimError(f"--{option} is required with --broker")
            pki = Pki(work, Path(args.ca), Path(), Path(), Path())
            pki.devices[args.serial] = Identity(Path(args.cert), Path(args.key))
            backend = _backend_identity(args, scenario, consents)
            if backend is not None:
                pki.observers["observer"] = backend
            record = _run_one(
                pki,
                host,
                int(port),
                args.serial,
                scenario.name,
                args.policy,
                consents,
                audio,
                args.speed,
                work,
                images,
                pki if "observer" in pki.observers else None,
            )
        else:
            say("starting a local mutual-TLS Mosquitto with throwaway certificates")
            with local_world(work, [args.serial]) as (pki, broker):
                record = _run_one(
                    pki,
                    broker.host,
                    broker.port,
                    args.serial,
                    scenario.name,
                    args.policy,
                    consents,
                    audio,
                    args.speed,
                    work,
                    images,
                    pki,
                )
    audit = audit_run(record)
    observed = f"leak audit: {len(audit.findings)} finding(s)"
    if args.broker and not args.backend_cert:
        observed = "no backend identity: nothing observed, no leak audit"
    sent = len(consents) + sum(m.kind.endswith(".answered") for m in record.timeline)
    if sent:
        observed += f"; app: {sent - len(record.unanswered)}/{sent} command(s) answered"
    print(
        f"{record.scenario}: {len(record.messages)} messages observed, drained={record.drained}, "
        f"{record.wall_s:.1f} s; {observed}"
    )
    for finding in audit.findings:
        print(f"  FINDING {finding.topic}: {finding.problem}")
    for step in record.unanswered:
        print(f"  FAILED the device never answered the app's command: {step}")
    return 1 if audit.findings or not record.drained or record.unanswered else 0


def _backend_identity(
    args: argparse.Namespace, scenario: Scenario, consents: tuple[str, ...]
) -> Identity | None:
    """The backend's certificate and key with ``--broker``; refused up front when the
    scenario needs the app (a grant, a switch) and none was given."""
    if bool(args.backend_cert) != bool(args.backend_key):
        raise SimError("--backend-cert and --backend-key go together")
    if args.backend_cert:
        for option in ("backend_cert", "backend_key"):
            if not Path(getattr(args, option)).is_file():
                raise SimError(
                    f"--{option.replace('_', '-')}: no such file {getattr(args, option)!r}"
                )
        return Identity(Path(args.backend_cert), Path(args.backend_key))
    needs = [f"--consent {','.join(consents)}"] if consents else []
    needs += sorted(set(scenario.app_steps))
    if needs:
        raise SimError(
            f"scenario {scenario.name} needs the user's app ({', '.join(needs)}), which sends "
            "commands through the broker: give --backend-cert and --backend-key (a client "
            f"certificate allowed to write devices/{args.serial}/cmd and read devices/#)"
        )
    return None


def _run_one(
    pki: Pki,
    host: str,
    port: int,
    serial: str,
    scenario: str,
    policy: str,
    consents: tuple[str, ...],
    audio: bool | None,
    speed: float | None,
    work: Path,
    images: list[RenderedFrame],
    observer_pki: Pki | None,
) -> RunRecord:
    relay = LinkRelay(host, port)
    setup = prepare_device(pki, serial, work / serial)
    config = agent_config(setup, [(relay.host, relay.port)], policy, audio)
    harness = AgentHarness(setup, config, SimClock())
    backend = backend_observer(observer_pki, host, port) if observer_pki else None
    try:
        if backend is not None:
            backend.start()
        harness.start()
        if not harness.wait_connected(15):
            raise SimError(f"the agent did not connect to {host}:{port}")
        status = Status()
        record = run_scenario(
            harness,
            relay,
            backend or NoBackend(),
            SimDevice(serial, images=images),
            get_scenario(scenario),
            speed_for(scenario, speed),
            consents,
            status,
        )
        status.done(f"{scenario}: done")
        return record
    finally:
        harness.stop()
        if backend is not None:
            backend.stop()
        relay.close()


# -- demo ------------------------------------------------------------------------------------


DEMO_PLAN: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    (
        "en-2020-01-19",
        (),
        ("normal_day", "street_parked_cars", "night", "offline_hour", "reboot_during_upload"),
    ),
    (
        "en-2023-01-10",
        ("device_ai",),
        (
            "normal_day",
            "street_parked_cars",
            "consent_withdrawn_mid_queue",
            "audio_off",
            "policy_switch",
            "rtc_skew",
            "flaky_link",
        ),
    ),
)


def cmd_demo(args: argparse.Namespace) -> int:
    started = time.monotonic()
    out = Path(args.out).resolve()
    if out.exists():
        shutil.rmtree(out / "device", ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    serial = "SN0001"
    streets = load_images(STREETS)
    say(f"working folder {out}")
    say("certificates: a throwaway CA, the broker, device SN0001 and an observer (certs package)")
    with local_world(out, [serial]) as (pki, broker):
        say(
            f"Mosquitto {broker.host}:{broker.port}: TLS only, client certificates "
            "required, ACL per device"
        )
        relay = LinkRelay(broker.host, broker.port)
        backend = backend_observer(pki, broker.host, broker.port).start()
        setup = prepare_device(pki, serial, out / "device")
        config = agent_config(setup, [(relay.host, relay.port)], DEMO_PLAN[0][0])
        harness = AgentHarness(setup, config, SimClock())
        records: list[RunRecord] = []
        try:
            harness.start()
            if not harness.wait_connected(15):
                raise SimError("the agent did not connect to the local broker")
            say(f"doorbell {serial} connected over mutual TLS; the observer sees every message")
            for version, consents, names in DEMO_PLAN:
                agent = harness.agent
                if agent is not None and agent.manifest.version != version:
                    send_command(harness, backend, "policy.accept", version, 5.0)
                say(
                    f"policy {version}"
                    + (f", consent granted: {', '.join(consents)}" if consents else ", no consent")
                )
                for index, name in enumerate(names):
                    status = Status()
                    record = run_scenario(
                        harness,
                        relay,
                        backend,
                        SimDevice(serial, seed=index, streets=streets),
                        get_scenario(name),
                        speed_for(name, None),
                        consents if index == 0 else (),
                        status,
                    )
                    records.append(record)
                    audit = audit_run(record)
                    status.done(
                        f"{name:<28} {len(record.messages):>3} messages  {record.wall_s:4.1f} s  "
                        f"{'drained' if record.drained else 'NOT DRAINED'}  "
                        f"{len(audit.findings)} finding(s)"
                    )
        finally:
            harness.stop()
            backend.stop()
            relay.close()
    audit = AuditSummary()
    for record in records:
        audit_run(record, audit)
    audit_path = out / "device" / "state" / "audit.jsonl"
    summary = summarise(records, [audit_path])
    wall = time.monotonic() - started
    print(summary_text(summary, audit, wall))
    report = write_html(
        out / "report.html", records, summary, audit, [v for v, _, _ in DEMO_PLAN], wall
    )
    say(f"HTML report: {report}")
    sealed, line = _seals_and_checkpoints(setup, records, out)
    print(line)
    checked = ", ".join(f"{k} {v}" for k, v in sorted(backend.checked.items()))
    print(f"Contract: {sum(backend.checked.values())} messages valid against docs/asyncapi.yaml "
          f"({checked})")  # fmt: skip
    say(
        f"audit trail: {audit_path.parent} (check it: python -m edge audit verify "
        f"{audit_path.parent} --seal-key {setup.seal_verify_key} --checkpoints "
        f"{out / 'checkpoints.jsonl'} --device-key {setup.signing_public_key})"
    )
    drained = all(r.drained for r in records)
    return 0 if (not audit.findings and summary.audit_ok and sealed and drained) else 1


def _seals_and_checkpoints(
    setup: DeviceSetup, records: Sequence[RunRecord], out: Path
) -> tuple[bool, str]:
    """The trail's seals against the verifier's key, and against the checkpoints the
    backend received (written to ``out/checkpoints.jsonl`` for ``audit verify``)."""
    trail = [r for segment in read_trail(out / "device" / "state") for r in segment.records]
    seals = verify_seals(trail, setup.seal_verify_key.read_bytes())
    received = [
        json.loads(m.payload)["data"]["audit_checkpoint"]
        for record in records
        for m in record.messages
        if m.topic.endswith("/audit/checkpoint")
    ]
    (out / "checkpoints.jsonl").write_text("".join(json.dumps(c) + "\n" for c in received))
    key = serialization.load_pem_public_key(setup.signing_public_key.read_bytes())
    if not isinstance(key, Ed25519PublicKey):
        return False, f"Audit seals: {setup.signing_public_key} is not an Ed25519 key"
    results = check_against_checkpoints(trail, [parse_checkpoint(c) for c in received], key)
    consistent = sum(r.ok for r in results)
    ok = seals.ok and seals.sealed > 0 and consistent == len(results)
    verdict = "valid" if seals.ok else f"BROKEN at record {seals.first_bad_seq}: {seals.problem}"
    return ok, (
        f"Audit seals: {seals.sealed} records sealed, {verdict}; "
        f"{consistent} of {len(results)} signed checkpoint(s) consistent"
    )


# -- audit ------------------------------------------------------------------------------------


def consent_states(version: str) -> list[tuple[str, tuple[str, ...]]]:
    """The consent states to audit under ``version``: none, and every purpose that this
    version asks consent for (read from its manifest, not from a version name)."""
    purposes = tuple(p.value for p in load_manifest(version).consent_purposes())
    return [("none", ())] + ([("all", purposes)] if purposes else [])


def audit_matrix(
    scenarios: Sequence[str], versions: Sequence[str], workdir: Path, progress: Status | None = None
) -> tuple[AuditSummary, list[tuple[str, str, str, str, int, int]]]:
    """Every scenario x version x consent state (none, all) x audio on/off, on one broker.

    Scenarios that withdraw consent mid-run cover the 'withdrawn' state."""
    summary = AuditSummary()
    table: list[tuple[str, str, str, str, int, int]] = []
    serial = "SN0001"
    with local_world(workdir, [serial]) as (pki, broker):
        backend = backend_observer(pki, broker.host, broker.port).start()
        try:
            for version in versions:
                for consent_name, consents in consent_states(version):
                    for audio in (True, False):
                        for name in scenarios:
                            relay = LinkRelay(broker.host, broker.port)
                            setup = prepare_device(
                                pki,
                                serial,
                                workdir / "runs" / f"{version}-{consent_name}-{audio}-{name}",
                            )
                            config = agent_config(setup, [(relay.host, relay.port)], version, audio)
                            harness = AgentHarness(setup, config, SimClock(), synchronous="NORMAL")
                            try:
                                harness.start()
                                harness.wait_connected(15)
                                record = run_scenario(
                                    harness,
                                    relay,
                                    backend,
                                    SimDevice(serial),
                                    get_scenario(name),
                                    speed_for(name, None) * 2,
                                    consents,
                                    progress or (lambda _: None),
                                )
                            finally:
                                harness.stop()
                                relay.close()
                            before = len(summary.findings)
                            audit_run(record, summary)
                            found = len(summary.findings) - before
                            table.append(
                                (
                                    name,
                                    version,
                                    consent_name,
                                    "on" if audio else "off",
                                    len(record.messages),
                                    found,
                                )
                            )
                            if progress is not None:
                                progress.done(
                                    f"{name:<28} {version}  consent={consent_name:<4} "
                                    f"audio={'on ' if audio else 'off'}  "
                                    f"{len(record.messages):>3} msgs  {found} finding(s)"
                                )
        finally:
            backend.stop()
    return summary, table


def cmd_audit(args: argparse.Namespace) -> int:
    scenarios = [s for s in args.scenarios.split(",") if s] if args.scenarios else list(SCENARIOS)
    for name in scenarios:
        get_scenario(name)
    versions = [v for v in args.versions.split(",") if v] if args.versions else list_versions()
    for version in versions:
        if version not in list_versions():
            raise SimError(f"unknown policy version {version!r}")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="leak-audit-") as tmp:
        summary, table = audit_matrix(scenarios, versions, Path(tmp), Status())
    print()
    print(
        f"{'scenario':<28} {'version':<14} {'consent':<7} {'audio':<5} {'msgs':>5} {'findings':>8}"
    )
    for name, version, consent, audio, msgs, found in table:
        print(f"{name:<28} {version:<14} {consent:<7} {audio:<5} {msgs:>5} {found:>8}")
    print(
        f"\n{summary.checked} messages, {summary.images} images, {summary.plates} plates, "
        f"{summary.clips} clips "
        f"checked in {time.monotonic() - started:.0f} s: {len(summary.findings)} finding(s)"
    )
    for finding in summary.findings:
        print(f"  FINDING [{finding.scenario}] {finding.topic}: {finding.problem}")
    return 1 if summary.findings else 0


def cmd_list(args: argparse.Namespace) -> int:
    for scenario in SCENARIOS.values():
        print(f"{scenario.name:<28} {scenario.duration_s:>7.0f} s  {scenario.description}")
    return 0


def cmd_fleet(args: argparse.Namespace) -> int:
    from firmware_sim.fleet import run_fleet

    result: int = run_fleet(args)
    return result


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m firmware_sim", description="Hardware-in-the-loop simulator."
    )
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list the scenarios")
    run = sub.add_parser("run", help="run one scenario against the real agent")
    run.add_argument("--scenario", required=True)
    run.add_argument("--policy", required=True)
    run.add_argument("--consent", help="comma-separated purposes granted at the start")
    run.add_argument("--audio", choices=["on", "off"])
    run.add_argument("--serial", default="SN0001")
    run.add_argument("--broker", help="HOST:PORT of an existing broker")
    run.add_argument("--ca")
    run.add_argument("--cert")
    run.add_argument("--key")
    run.add_argument("--backend-cert", help="with --broker: the backend's client certificate")
    run.add_argument("--backend-key", help="with --broker: the backend's private key")
    run.add_argument("--speed", type=float, help="simulated seconds per real second")
    run.add_argument("--images", help="a folder of images to use as camera frames")
    demo = sub.add_parser("demo", help="the doorbell demo (local broker, 2020 and 2023 policies)")
    demo.add_argument("--out", default="demo-out")
    audit = sub.add_parser("audit", help="the leak audit matrix")
    audit.add_argument("--scenarios")
    audit.add_argument("--versions")
    fleet = sub.add_parser("fleet", help="N devices on one broker")
    fleet.add_argument("--devices", type=int, required=True)
    fleet.add_argument("--messages", type=int, default=5)
    fleet.add_argument("--broker")
    fleet.add_argument("--ca")
    fleet.add_argument("--cert-dir")
    fleet.add_argument("--out", default=None)
    fleet.add_argument(
        "--cluster", action="store_true", help="a 3-node NATS cluster; stop one node mid-run"
    )
    fleet.add_argument(
        "--kill",
        choices=["session-leader", "msgs-leader", "other", "random"],
        default="random",
        help="with --cluster: which node to stop, by its JetStream role (default: random)",
    )
    fleet.add_argument(
        "--stop",
        choices=["kill", "term"],
        default="kill",
        help="with --cluster: SIGKILL (a crash) or SIGTERM (a planned, graceful stop)",
    )
    fleet.add_argument("--seed", type=int, help="with --cluster: seed of the random choices")
    fleet.add_argument(
        "--js-api-timeout",
        default="1s",
        help="with --cluster on nats-server 2.10+: mqtt { js_api_timeout } (default: 1s)",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    args = parser().parse_args(argv)
    handlers = {
        "list": cmd_list,
        "run": cmd_run,
        "demo": cmd_demo,
        "audit": cmd_audit,
        "fleet": cmd_fleet,
    }
    try:
        return handlers[args.command](args)
    except (SimError, CertError, EdgeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
