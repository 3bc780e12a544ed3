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


@pytest.fixture(scope="session")
def nats_binary() -> str:
    from firmware_sim.nats_cluster import find_nats_server

    binary = find_nats_server()
    if binary is None:
        message = (
            "nats-server is not installed (scripts/setup.sh installs it from Debian's packages)"
        )
        if running_under_ci():
            pytest.fail(message + "; under CI=true this is a failure, not a skip")
        pytest.skip(message)
    return binary
