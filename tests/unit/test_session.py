"""The pure session: events in, commands out (no sockets)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.session import (
    FALLBACK_DELAY_S,
    Connect,
    ConnectFailed,
    ConnectionLost,
    ConnectSucceeded,
    Endpoint,
    Protocol,
    ProtocolChoice,
    PublishAcked,
    SessionConfig,
    Subscribed,
    backoff_delay_s,
    on_connect_failed,
    on_connected,
    on_connection_lost,
    start,
)

A = Endpoint("127.0.0.1", 8883)
B = Endpoint("127.0.0.1", 8884)


@pytest.mark.parametrize(
    ("attempt", "u", "expected"),
    [(0, 1.0, 0.5), (1, 1.0, 1.0), (3, 1.0, 4.0), (10, 1.0, 30.0), (3, 0.5, 2.0), (5, 0.0, 0.0)],
)
def test_backoff_delay_is_exponential_with_full_jitter(
    attempt: int, u: float, expected: float
) -> None:
    assert backoff_delay_s(attempt, 0.5, 30.0, u) == pytest.approx(expected)


@given(st.integers(0, 10_000), st.floats(0, 1))
def test_backoff_delay_never_exceeds_the_cap(attempt: int, u: float) -> None:
    assert 0.0 <= backoff_delay_s(attempt, 0.5, 30.0, u) <= 30.0


def test_session_start_connects_at_once_with_mqtt5() -> None:
    state, command = start(SessionConfig((A, B)))
    assert command == Connect(A, Protocol.MQTT5, 0.0)
    assert not state.connected


def test_session_start_needs_an_endpoint() -> None:
    with pytest.raises(ValueError, match="endpoint"):
        start(SessionConfig(()))


def test_session_falls_back_to_mqtt311_promptly_on_unsupported_protocol() -> None:
    state, _ = start(SessionConfig((A, B)))
    failed = ConnectFailed(A, Protocol.MQTT5, "unsupported", unsupported_protocol=True)
    state, command = on_connect_failed(state, failed, u=0.9)
    assert command == Connect(A, Protocol.MQTT311, FALLBACK_DELAY_S)
    # The other nodes of the list are taken to be the same broker: a failover goes
    # straight to 3.1.1, and later failures keep it.
    state, command = on_connect_failed(state, ConnectFailed(A, Protocol.MQTT311, "down"), u=1.0)
    assert command.endpoint == B
    assert command.protocol is Protocol.MQTT311
    state, command = on_connect_failed(state, ConnectFailed(B, Protocol.MQTT311, "down"), u=1.0)
    assert command.endpoint == A
    assert command.protocol is Protocol.MQTT311


def test_session_keeps_mqtt5_on_an_endpoint_that_accepted_it() -> None:
    state, _ = start(SessionConfig((A, B)))
    state = on_connected(state, ConnectSucceeded(A, Protocol.MQTT5))
    state, command = on_connection_lost(state, ConnectionLost("reset"), u=0.0)
    state, command = on_connect_failed(state, ConnectFailed(A, Protocol.MQTT5, "down"), u=0.0)
    assert command == Connect(B, Protocol.MQTT5, 0.0)
    unsupported = ConnectFailed(B, Protocol.MQTT5, "unsupported", unsupported_protocol=True)
    state, command = on_connect_failed(state, unsupported, u=0.0)
    assert command == Connect(B, Protocol.MQTT311, FALLBACK_DELAY_S)
    state, command = on_connect_failed(state, ConnectFailed(B, Protocol.MQTT311, "down"), u=0.0)
    assert command == Connect(A, Protocol.MQTT5, 0.0)  # A was seen speaking MQTT 5


def test_session_fixed_protocols_never_switch() -> None:
    state, command = start(SessionConfig((A, B), protocol=ProtocolChoice.MQTT311))
    assert command.protocol is Protocol.MQTT311
    state, command = start(SessionConfig((A, B), protocol=ProtocolChoice.MQTT5))
    unsupported = ConnectFailed(A, Protocol.MQTT5, "unsupported", unsupported_protocol=True)
    state, command = on_connect_failed(state, unsupported, u=1.0)
    assert command.endpoint == B  # treated as a failed connect, not a fallback
    assert command.protocol is Protocol.MQTT5
    assert state.last_error == "unsupported"


def test_session_rotates_endpoints_with_growing_backoff() -> None:
    state, _ = start(SessionConfig((A, B), backoff_base_s=1.0, backoff_max_s=8.0))
    delays = []
    endpoints = []
    for _ in range(5):
        state, command = on_connect_failed(
            state, ConnectFailed(state.endpoint, state.protocol, "x"), u=1.0
        )
        delays.append(command.delay_s)
        endpoints.append(command.endpoint)
    assert delays == [1.0, 2.0, 4.0, 8.0, 8.0]
    assert endpoints == [B, A, B, A, B]
    assert state.last_error == "x"


def test_session_success_resets_backoff_and_loss_reconnects_same_endpoint() -> None:
    state, _ = start(SessionConfig((A, B), backoff_base_s=1.0))
    state, _ = on_connect_failed(state, ConnectFailed(A, Protocol.MQTT5, "x"), u=1.0)
    state = on_connected(state, ConnectSucceeded(B, Protocol.MQTT5))
    assert state.connected
    assert state.attempt == 0
    state, command = on_connection_lost(state, ConnectionLost("reset"), u=1.0)
    assert command == Connect(B, Protocol.MQTT5, 1.0)
    assert not state.connected


def test_publish_acked_refused_from_reason_code_0x80() -> None:
    assert PublishAcked(1, 0x87).refused
    assert not PublishAcked(1, 0x10).refused  # "no matching subscribers" is a success


def test_subscribed_granted_only_without_failure_codes() -> None:
    assert Subscribed(1, (1,)).granted
    assert not Subscribed(1, (1, 0x87)).granted
