"""Pure: the connection logic as events in, commands out (h11/mqttproto style).

Theory of operation. The agent owns one ``SessionState``. Every thing that happens on the
wire arrives as an event (``ConnectSucceeded``, ``ConnectFailed``, ``ConnectionLost``); the
session answers with commands (``Connect`` after a delay). The transport executes them.

Rules:
1. Reconnect with exponential backoff and full jitter: attempt ``n`` waits
   ``u * min(backoff_max_s, backoff_base_s * 2**n)`` with ``u`` uniform in [0, 1) given
   by the caller (AWS "Exponential Backoff and Jitter"); a success resets ``n``.
2. Endpoints are tried in turn: a failed connect moves to the next endpoint of the list.
3. With ``protocol = AUTO`` MQTT 5 is tried first; a broker that refuses the protocol
   version (MQTT 3.1.1 brokers such as NATS) is retried with 3.1.1 after
   ``FALLBACK_DELAY_S``. The endpoints of one list are nodes of one broker service, so
   that refusal puts every endpoint not yet seen speaking MQTT 5 on 3.1.1 for the rest of
   the run: a failover to another node then costs one connect, not a refusal and a
   second connect in the middle of a reconnect storm. ``protocol = MQTT5`` never falls
   back (a refusal is an error); ``MQTT311`` never tries MQTT 5.
4. A refusal that retrying cannot fix (bad certificate, not authorised) is still retried
   with backoff, because certificates can be rotated and ACLs reloaded, but it is
   reported as ``fatal`` so the operator sees it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

# A broker that refused MQTT 5 (NATS) has just closed that socket; reconnecting in the
# same instant was seen to fail ("connection lost") on NATS 2.9, so wait a moment.
FALLBACK_DELAY_S = 0.2


class Protocol(StrEnum):
    MQTT5 = "5"
    MQTT311 = "3.1.1"


class ProtocolChoice(StrEnum):
    """The configured protocol: ``auto`` (MQTT 5, 3.1.1 where refused) or a fixed one."""

    AUTO = "auto"
    MQTT5 = "5"
    MQTT311 = "3.1.1"


@dataclass(frozen=True, slots=True)
class Endpoint:
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class ConnectSucceeded:
    endpoint: Endpoint
    protocol: Protocol


@dataclass(frozen=True, slots=True)
class ConnectFailed:
    endpoint: Endpoint
    protocol: Protocol
    reason: str
    unsupported_protocol: bool = False
    fatal: bool = False


@dataclass(frozen=True, slots=True)
class ConnectionLost:
    reason: str


@dataclass(frozen=True, slots=True)
class Connect:
    """Command: open a connection to ``endpoint`` after ``delay_s`` seconds."""

    endpoint: Endpoint
    protocol: Protocol
    delay_s: float


@dataclass(frozen=True, slots=True)
class SessionConfig:
    endpoints: tuple[Endpoint, ...]
    backoff_base_s: float = 0.5
    backoff_max_s: float = 30.0
    protocol: ProtocolChoice = ProtocolChoice.AUTO


@dataclass(frozen=True, slots=True)
class SessionState:
    config: SessionConfig
    connected: bool = False
    attempt: int = 0
    endpoint_index: int = 0
    protocols: tuple[Protocol, ...] = ()
    speaks_mqtt5: frozenset[int] = frozenset()  # endpoint indexes seen accepting MQTT 5
    last_error: str = ""

    @property
    def endpoint(self) -> Endpoint:
        return self.config.endpoints[self.endpoint_index]

    @property
    def protocol(self) -> Protocol:
        return self.protocols[self.endpoint_index]


def backoff_delay_s(attempt: int, base_s: float, max_s: float, u: float) -> float:
    """Full-jitter exponential backoff (rule 1); ``u`` in [0, 1)."""
    ceiling = min(max_s, base_s * 2.0 ** min(attempt, 32))
    return max(0.0, min(u, 1.0)) * ceiling


def start(config: SessionConfig) -> tuple[SessionState, Connect]:
    """The initial state and the first connect command (no delay)."""
    if not config.endpoints:
        raise ValueError("a session needs at least one endpoint")
    first = Protocol.MQTT311 if config.protocol is ProtocolChoice.MQTT311 else Protocol.MQTT5
    state = SessionState(config=config, protocols=(first,) * len(config.endpoints))
    return state, Connect(state.endpoint, state.protocol, 0.0)


def on_connected(state: SessionState, event: ConnectSucceeded) -> SessionState:
    speaks = state.speaks_mqtt5
    if event.protocol is Protocol.MQTT5:
        speaks = speaks | {state.endpoint_index}
    return replace(state, connected=True, attempt=0, speaks_mqtt5=speaks, last_error="")


def on_connect_failed(
    state: SessionState, event: ConnectFailed, u: float
) -> tuple[SessionState, Connect]:
    """Rules 2 and 3: fall back to 3.1.1 promptly, else next endpoint after a backoff."""
    if (
        event.unsupported_protocol
        and event.protocol is Protocol.MQTT5
        and state.config.protocol is ProtocolChoice.AUTO
    ):
        protocols = tuple(
            Protocol.MQTT5
            if i in state.speaks_mqtt5 and i != state.endpoint_index
            else Protocol.MQTT311
            for i in range(len(state.protocols))
        )
        new = replace(state, protocols=protocols, last_error=event.reason)
        return new, Connect(new.endpoint, Protocol.MQTT311, FALLBACK_DELAY_S)
    delay = backoff_delay_s(
        state.attempt, state.config.backoff_base_s, state.config.backoff_max_s, u
    )
    index = (state.endpoint_index + 1) % len(state.config.endpoints)
    new = replace(
        state,
        connected=False,
        attempt=state.attempt + 1,
        endpoint_index=index,
        last_error=event.reason,
    )
    return new, Connect(new.endpoint, new.protocol, delay)


def on_connection_lost(
    state: SessionState, event: ConnectionLost, u: float
) -> tuple[SessionState, Connect]:
    """A dropped connection reconnects to the same endpoint first, with backoff."""
    delay = backoff_delay_s(
        state.attempt, state.config.backoff_base_s, state.config.backoff_max_s, u
    )
    new = replace(state, connected=False, attempt=state.attempt + 1, last_error=event.reason)
    return new, Connect(new.endpoint, new.protocol, delay)


@dataclass(frozen=True, slots=True)
class PublishAcked:
    """PUBACK for ``mid``; ``reason_code`` >= 0x80 means the broker refused it (MQTT 5)."""

    mid: int
    reason_code: int
    reason: str = ""

    @property
    def refused(self) -> bool:
        return self.reason_code >= 0x80


@dataclass(frozen=True, slots=True)
class MessageReceived:
    topic: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class Subscribed:
    mid: int
    reason_codes: tuple[int, ...]

    @property
    def granted(self) -> bool:
        return all(code < 0x80 for code in self.reason_codes)


TransportEvent = (
    ConnectSucceeded | ConnectFailed | ConnectionLost | PublishAcked | MessageReceived | Subscribed
)
