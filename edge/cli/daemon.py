"""Shell: ``python -m edge run --config FILE`` and ``python -m edge check-config FILE``.

The daemon refuses to start on a bad config, a key file readable by others, an unknown
policy version or unusable certificates, printing every problem with its path and
exiting 2. SIGTERM/SIGINT shut it down cleanly: ``stopped`` is published and the audit
trail flushed. Logs are one JSON object per line and never contain payloads or keys.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import signal
import sys
import threading
from collections.abc import Callable
from importlib.resources.abc import Traversable
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from edge.config import AgentConfig, parse_config
from edge.errors import ConfigError, ConfigIssue, EdgeError
from edge.shell.clock import Clock, SystemClock
from edge.shell.notify import Notifier
from edge.shell.shipped import list_versions
from edge.shell.tls import TlsFiles, TlsIdentity, check_key_permissions
from edge.shell.transport import MqttTransport

if TYPE_CHECKING:
    from edge.shell.agent import Agent

logger = logging.getLogger(__name__)

EXIT_CONFIG = 2


class JsonFormatter(logging.Formatter):
    """One JSON object per line: easy to ship, grep and parse; never a payload."""

    def format(self, record: logging.LogRecord) -> str:
        body: dict[str, object] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            body["exc"] = self.formatException(record.exc_info)
        return json.dumps(body, ensure_ascii=False)


def setup_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    logging.basicConfig(level=level, handlers=[handler], force=True)


def load_config(path: Path) -> AgentConfig:
    """Read, parse and check a config file against the machine (files, permissions).

    Raises:
        ConfigError: every problem, each with its path.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as err:
        raise ConfigError([ConfigIssue("", f"config file not found: {path}")]) from err
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError([ConfigIssue("", f"cannot read config file {path}: {err}")]) from err
    config = parse_config(text, base_dir=path.resolve().parent)
    issues = check_environment(config)
    if issues:
        raise ConfigError(issues)
    return config


def check_environment(config: AgentConfig) -> list[ConfigIssue]:
    """The checks that need the file system: versions, key permissions, readable files."""
    issues: list[ConfigIssue] = []
    known = list_versions()
    if config.policy.version not in known:
        issues.append(
            ConfigIssue(
                "policy.version",
                f"unknown policy version {config.policy.version!r} (known: {', '.join(known)})",
            )
        )
    for where, path in (("tls.ca", config.tls.ca), ("tls.cert", config.tls.cert)):
        if not path.is_file():
            issues.append(ConfigIssue(where, f"file not found: {path}"))
    if not config.tls.key.is_file():
        issues.append(ConfigIssue("tls.key", f"file not found: {config.tls.key}"))
    else:
        issues += check_key_permissions(config.tls.key, "tls.key")
    key_file = config.outbox_key_file
    if key_file.exists():
        issues += check_key_permissions(key_file, "outbox.key_file")
    if config.policy.app_public_key is not None:
        try:
            load_app_key(config.policy.app_public_key)
        except EdgeError as err:
            issues.append(ConfigIssue("policy.app_public_key", str(err)))
    return issues


def load_app_key(path: Path) -> Ed25519PublicKey:
    """The user's app key (Ed25519, PEM), provisioned at enrolment.

    Raises:
        ConfigError: missing file or not an Ed25519 public key.
    """
    try:
        key = load_pem_public_key(path.read_bytes())
    except FileNotFoundError as err:
        raise ConfigError(
            [ConfigIssue("policy.app_public_key", f"file not found: {path}")]
        ) from err
    except ValueError as err:
        message = f"not a PEM public key: {path}"
        raise ConfigError([ConfigIssue("policy.app_public_key", message)]) from err
    if not isinstance(key, Ed25519PublicKey):
        message = f"expected an Ed25519 public key, got {type(key).__name__}: {path}"
        raise ConfigError([ConfigIssue("policy.app_public_key", message)])
    return key


def _print_issues(err: ConfigError, path: Path) -> None:
    print(f"{path}: {len(err.issues)} problem(s)", file=sys.stderr)
    for issue in err.issues:
        print(f"  {issue}", file=sys.stderr)


def changed_keys(old: object, new: object, prefix: str = "") -> list[str]:
    """Dotted names of the config values that differ (``media.anonymiser_budget_ms``)."""
    if not (dataclasses.is_dataclass(old) and dataclasses.is_dataclass(new)):
        return [prefix] if old != new else []
    keys: list[str] = []
    for field in dataclasses.fields(old):
        name = f"{prefix}.{field.name}" if prefix else field.name
        keys += changed_keys(getattr(old, field.name), getattr(new, field.name), name)
    return keys


def reload_config(path: Path, current: AgentConfig) -> list[str]:
    """SIGHUP: re-read and check ``path``; returns the keys that changed.

    The agent takes its config once, at start, so every changed key needs a restart; the
    reload says which, and a broken file is reported without touching the running agent.
    """
    try:
        new = load_config(path)
    except ConfigError as err:
        logger.error(
            "SIGHUP: %s has %d problem(s), kept the running config: %s",
            path,
            len(err.issues),
            "; ".join(str(i) for i in err.issues),
        )
        return []
    keys = changed_keys(current, new)
    if keys:
        logger.warning("SIGHUP: changed %s; these take effect after a restart", ", ".join(keys))
    else:
        logger.info("SIGHUP: %s re-read, nothing changed", path)
    return keys


def plate_model_problem(folder: Traversable | None = None) -> str | None:
    """Why the plate verifier cannot be used (None: it can). Checked at start so that an
    operator reads it at once: without it the agent still runs, but blurs every snapshot
    and clip frame whole (the anonymiser fails closed, counted and audited)."""
    from edge.shell.plate_model import PlateModelError, load_verifier

    try:
        load_verifier(folder)
    except PlateModelError as err:
        return str(err)
    return None


def run(
    config: AgentConfig,
    stop_event: threading.Event | None = None,
    config_path: Path | None = None,
    clock: Clock | None = None,
    on_start: Callable[[Agent], None] | None = None,
) -> int:
    """Run the agent until SIGTERM/SIGINT (or ``stop_event``); SIGHUP re-reads ``config_path``.

    ``clock`` and ``on_start`` are for embedding the daemon whole (``benchmarks/soak.py``
    runs it for simulated days on a fast clock and feeds its inputs): the wall clock and
    nothing, by default."""
    from edge.shell.agent import Agent, Stop
    from edge.shell.camera_source import start_camera
    from edge.shell.memory import tune_malloc

    tune_malloc()

    identity = TlsIdentity(TlsFiles(config.tls.ca, config.tls.cert, config.tls.key))
    identity.context()  # refuse to start on unusable files
    app_key = load_app_key(config.policy.app_public_key) if config.policy.app_public_key else None

    def transport_factory(client_id: str, events: object) -> MqttTransport:
        return MqttTransport(
            client_id,
            identity.context,
            events,  # type: ignore[arg-type]
            config.broker.keepalive_s,
            config.broker.max_inflight,
        )

    agent = Agent(
        config,
        clock or SystemClock(),
        transport_factory,
        app_public_key=app_key,
        status_every_s=config.device.status_every_s,
    )
    hangup = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        logger.info("signal %d: stopping cleanly", signum)
        agent.events.put(Stop())

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGHUP, lambda signum, frame: hangup.set())
    camera = start_camera(config, agent) if config.media.source != "sim" else None
    if stop_event is not None:
        event = stop_event

        def stop_when_set() -> None:
            event.wait()
            agent.events.put(Stop())

        threading.Thread(target=stop_when_set, daemon=True).start()
    logger.info(
        "agent %s started: policy %s, broker %s",
        config.device.serial,
        agent.manifest.version,
        ", ".join(str(e) for e in config.broker.endpoints),
    )
    problem = plate_model_problem()
    if problem is not None:
        logger.error("plate anonymiser degraded, every image will be blurred whole: %s", problem)
    notifier = Notifier()
    if on_start is not None:
        on_start(agent)
    try:
        agent.start()  # agent.run(), with a systemd notify turn after each step
        while not agent.stopped:
            agent.step(1.0)
            notifier.tick(ready=agent.ready)
            if hangup.is_set() and config_path is not None:
                hangup.clear()
                reload_config(config_path, config)
    finally:
        notifier.stopping()
        if camera is not None:
            camera.stop()
    logger.info("agent %s stopped", config.device.serial)
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m edge")
    sub = parser.add_subparsers(dest="command", required=True)
    run_parser = sub.add_parser("run", help="run the agent")
    run_parser.add_argument("--config", required=True, type=Path)
    run_parser.add_argument("--log-level", default="INFO")
    check = sub.add_parser("check-config", help="validate a config file")
    check.add_argument("config", type=Path)
    args = parser.parse_args(argv)
    path: Path = args.config
    try:
        config = load_config(path)
    except ConfigError as err:
        _print_issues(err, path)
        return EXIT_CONFIG
    if args.command == "check-config":
        print(f"{path}: OK (device {config.device.serial}, policy {config.policy.version})")
        return 0
    setup_logging(args.log_level)
    try:
        return run(config, config_path=path)
    except ConfigError as err:
        _print_issues(err, path)
        return EXIT_CONFIG
    except EdgeError as err:
        logger.error("agent stopped: %s", err)
        return 1
