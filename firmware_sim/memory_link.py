"""Shell (a stand-in for the network): an in-memory broker and transport, for
deterministic, millisecond runs of the real agent (tests/sim). The same scenarios run
over real MQTT and TLS in the integration tests and the demo.

The broker acknowledges every publish at once, keeps retained messages, delivers the
Will when a connection dies, and can be taken "down" (connects fail, the connection is
lost). It is synchronous: events go straight onto the agent's queue.
"""

from __future__ import annotations

import queue
from collections.abc import Callable
from dataclasses import dataclass, field

from edge.release import Sendable, only_sendable
from edge.session import (
    Connect,
    ConnectFailed,
    ConnectionLost,
    ConnectSucceeded,
    MessageReceived,
    Protocol,
    PublishAcked,
    Subscribed,
    TransportEvent,
)


@dataclass(frozen=True, slots=True)
class Delivered:
    topic: str
    payload: bytes
    retain: bool
    seq: int
    at_s: float  # simulated time of delivery


@dataclass
class MemoryBroker:
    """Everything published, in order, and the retained store."""

    messages: list[Delivered] = field(default_factory=list)
    retained: dict[str, bytes] = field(default_factory=dict)
    up: bool = True
    time_s: Callable[[], float] = field(default=lambda: 0.0)
    _seq: int = 0
    _clients: dict[str, MemoryTransport] = field(default_factory=dict)

    def deliver(self, topic: str, payload: bytes, retain: bool) -> None:
        self._seq += 1
        self.messages.append(Delivered(topic, payload, retain, self._seq, self.time_s()))
        if retain:
            if payload:
                self.retained[topic] = payload
            else:
                self.retained.pop(topic, None)

    def send_command(self, serial: str, payload: bytes) -> bool:
        """A backend publishes on the device's command topic (delivered if connected)."""
        client = self._clients.get(serial)
        if client is None or not client.connected:
            return False
        client.events.put_nowait(MessageReceived(f"devices/{serial}/cmd", payload))
        return True

    def go_down(self) -> None:
        self.up = False
        for client in list(self._clients.values()):
            client.lose("network down")

    def come_up(self) -> None:
        self.up = True
        for client in list(self._clients.values()):
            if client.pending_connect is not None:
                client.connect(client.pending_connect, client._will)


class MemoryTransport:
    """Implements the agent's ``Transport`` protocol over a ``MemoryBroker``."""

    def __init__(
        self, client_id: str, events: queue.Queue[TransportEvent], broker: MemoryBroker
    ) -> None:
        self.client_id = client_id
        self.events = events
        self.broker = broker
        self.connected = False
        self._will: Sendable | None = None
        self._mid = 0
        self.pending_connect: Connect | None = None

    @property
    def protocol(self) -> Protocol:
        return Protocol.MQTT5

    def connect(self, command: Connect, will: Sendable | None) -> None:
        """Connects at once when the broker is up (delays are ignored: time is simulated)."""
        self._will = None if will is None else only_sendable(will)
        self.broker._clients[self.client_id] = self
        if not self.broker.up:
            if self.pending_connect is None:  # report once; retry when the network is back
                self.events.put_nowait(
                    ConnectFailed(command.endpoint, command.protocol, "network down")
                )
            self.pending_connect = command
            return
        self.pending_connect = None
        self.connected = True
        self.events.put_nowait(ConnectSucceeded(command.endpoint, Protocol.MQTT5))

    def publish(self, message: Sendable) -> int:
        from edge.errors import TransportError

        message = only_sendable(message)
        if not self.connected:
            raise TransportError("not connected to the broker")
        self._mid += 1
        self.broker.deliver(message.topic, message.payload, message.retain)
        self.events.put_nowait(PublishAcked(self._mid, 0, "Success"))
        return self._mid

    def subscribe(self, topic: str, qos: int = 1) -> int:
        self._mid += 1
        self.events.put_nowait(Subscribed(self._mid, (1,)))
        return self._mid

    def lose(self, reason: str) -> None:
        if self.connected:
            self.connected = False
            if self._will is not None:
                self.broker.deliver(self._will.topic, self._will.payload, True)
            self.events.put_nowait(ConnectionLost(reason))

    def disconnect(self) -> None:
        self.connected = False  # a clean DISCONNECT: no Will

    def drop(self) -> None:
        self.lose("dropped")

    def close(self, timeout_s: float = 5.0) -> None:
        self.connected = False
