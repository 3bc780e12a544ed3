"""Pure: what a backend does with each message it receives from devices, as a reference
to copy (``examples/consumer.py`` wires it to paho; ``docs/testing-with-simulated-devices.md``).

MQTT QoS 1 is *at least once*: a message the device sent once can arrive twice (its
PUBACK was lost, it re-sent after reconnecting; a restarted device re-sends what it had
not seen acknowledged). So a consumer:

1. de-duplicates by the envelope's ``record_id`` (bounded memory: the last ``remember``
   ids; the agent re-sends only what is still in its queue, so a window of a few queue
   lengths is enough);
2. ignores an availability message from an older session than the one it knows: the
   broker sends a device's Will (``offline``) when the old connection times out, which
   can be *after* the device reconnected and said ``online`` (design.md section 4);
3. refuses what does not match the contract (``check``, e.g. the AsyncAPI schemas of
   ``firmware_sim.contract``), counting it rather than crashing;
4. treats an empty retained payload as "this topic was cleared" (a withdrawal clears
   the retained diagnostics).
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

Check = Callable[[str, bytes], None]  # raises on a payload that breaks the contract


@dataclass(frozen=True, slots=True)
class Delivery:
    """A message the backend should act on, once."""

    serial: str
    channel: str  # the topic after ``<prefix>/<serial>/``: ``alarm/event``, ``birth``, ...
    record_id: str | None  # None: availability, or a cleared topic
    body: dict[str, object] | None  # the envelope (availability: its object; None: cleared)


@dataclass(frozen=True, slots=True)
class Skipped:
    """A message the backend must not act on, and why."""

    topic: str
    reason: str  # "duplicate", "stale will", "contract: ...", "not a device topic"


@dataclass
class Consumer:
    """One backend's view of its devices. Feed it every message: ``receive``."""

    prefix: str = "devices"
    remember: int = 100_000
    check: Check | None = None
    sessions: dict[str, int] = field(default_factory=dict)  # serial -> newest session seen
    online: dict[str, str] = field(default_factory=dict)  # serial -> last availability state
    counts: dict[str, int] = field(default_factory=dict)
    _seen: OrderedDict[str, None] = field(default_factory=OrderedDict)

    def receive(self, topic: str, payload: bytes) -> Delivery | Skipped:
        """Decide what one received message means."""
        parts = topic.split("/", 2)
        if len(parts) != 3 or parts[0] != self.prefix:
            return self._skip(topic, "not a device topic")
        serial, channel = parts[1], parts[2]
        if channel == "cmd" or (channel.startswith("cmd/") and channel != "cmd/result"):
            return self._skip(topic, "a command to the device, not from it")
        if not payload:
            return self._count(Delivery(serial, channel, None, None))  # topic cleared
        if self.check is not None:
            try:
                self.check(topic, payload)
            except Exception as err:  # noqa: BLE001 - any refusal by the validator
                return self._skip(topic, f"contract: {err}")
        try:
            body = json.loads(payload)
        except ValueError:
            return self._skip(topic, "contract: not JSON")
        if not isinstance(body, dict):
            return self._skip(topic, "contract: not an object")
        if channel == "availability":
            return self._availability(topic, serial, body)
        record_id = body.get("record_id")
        if not isinstance(record_id, str):
            return self._skip(topic, "contract: no record_id")
        if record_id in self._seen:
            self._seen.move_to_end(record_id)
            return self._skip(topic, "duplicate")
        self._seen[record_id] = None
        if len(self._seen) > self.remember:
            self._seen.popitem(last=False)
        if channel == "birth":
            data = body.get("data")
            session = data.get("session_counter") if isinstance(data, dict) else None
            if isinstance(session, int):
                self.sessions[serial] = max(session, self.sessions.get(serial, 0))
        return self._count(Delivery(serial, channel, record_id, body))

    def _availability(self, topic: str, serial: str, body: dict[str, object]) -> Delivery | Skipped:
        session, state = body.get("session"), body.get("state")
        if not isinstance(session, int) or not isinstance(state, str):
            return self._skip(topic, "contract: availability without state or session")
        if session < self.sessions.get(serial, 0):
            return self._skip(topic, "stale will")  # an older connection's last word
        if session == self.sessions.get(serial) and state == self.online.get(serial):
            return self._skip(topic, "duplicate")  # the same state, received twice
        self.sessions[serial] = session
        self.online[serial] = state
        return self._count(Delivery(serial, "availability", None, body))

    def _skip(self, topic: str, reason: str) -> Skipped:
        key = reason.split(":", 1)[0]
        self.counts[key] = self.counts.get(key, 0) + 1
        return Skipped(topic, reason)

    def _count(self, delivery: Delivery) -> Delivery:
        self.counts["delivered"] = self.counts.get("delivered", 0) + 1
        return delivery
