"""The reference consumer's rules (pure): once per record, no stale Will, contract first."""

from __future__ import annotations

import json

import pytest

from edge.consumer import Consumer, Delivery, Skipped


def _envelope(record_id: str, **data: object) -> bytes:
    return json.dumps(
        {
            "v": 1,
            "record_id": record_id,
            "created_at": "2026-12-05T12:00:00+00:00",
            "policy_version": "en-2023-01-10",
            "purpose": "agent",
            "data": data,
        }
    ).encode()


def _availability(state: str, session: int) -> bytes:
    return json.dumps({"state": state, "session": session}).encode()


def test_a_message_received_twice_is_delivered_once() -> None:
    consumer = Consumer()
    first = consumer.receive("devices/SN1/alarm/event", _envelope("r1"))
    again = consumer.receive("devices/SN1/alarm/event", _envelope("r1"))
    assert isinstance(first, Delivery)
    assert (first.serial, first.channel, first.record_id) == ("SN1", "alarm/event", "r1")
    assert again == Skipped("devices/SN1/alarm/event", "duplicate")
    assert consumer.counts == {"delivered": 1, "duplicate": 1}


def test_the_memory_of_record_ids_is_bounded() -> None:
    consumer = Consumer(remember=2)
    for record in ("r1", "r2", "r3"):
        consumer.receive("devices/SN1/telemetry", _envelope(record))
    assert isinstance(consumer.receive("devices/SN1/telemetry", _envelope("r1")), Delivery)
    assert isinstance(consumer.receive("devices/SN1/telemetry", _envelope("r3")), Skipped)


def test_a_will_from_an_older_session_than_the_birth_is_ignored() -> None:
    """The broker publishes the old connection's Will after the device came back."""
    consumer = Consumer()
    consumer.receive("devices/SN1/birth", _envelope("b7", session_counter=7))
    consumer.receive("devices/SN1/availability", _availability("online", 7))
    stale = consumer.receive("devices/SN1/availability", _availability("offline", 6))
    assert stale == Skipped("devices/SN1/availability", "stale will")
    assert consumer.online["SN1"] == "online"
    fresh = consumer.receive("devices/SN1/availability", _availability("offline", 7))
    assert isinstance(fresh, Delivery)
    assert consumer.online["SN1"] == "offline"


def test_a_cleared_retained_topic_is_delivered_as_cleared() -> None:
    got = Consumer().receive("devices/SN1/diagnostics", b"")
    assert got == Delivery("SN1", "diagnostics", None, None)


@pytest.mark.parametrize(
    ("topic", "payload", "reason"),
    [
        ("elsewhere/SN1/telemetry", _envelope("r1"), "not a device topic"),
        ("devices/SN1/cmd", b'{"id": "c1"}', "a command to the device, not from it"),
        ("devices/SN1/telemetry", b"not json", "contract: not JSON"),
        ("devices/SN1/telemetry", b'{"data": {}}', "contract: no record_id"),
        ("devices/SN1/availability", b'{"state": "online"}', "contract: availability"),
    ],
)
def test_what_a_backend_must_not_act_on_is_skipped_with_a_reason(
    topic: str, payload: bytes, reason: str
) -> None:
    got = Consumer().receive(topic, payload)
    assert isinstance(got, Skipped)
    assert got.reason.startswith(reason)


def test_the_contract_check_runs_first_and_its_refusal_is_counted() -> None:
    def check(topic: str, payload: bytes) -> None:
        if b"ip_address" in payload:
            raise ValueError("field 'ip_address' is not in the schema")

    consumer = Consumer(check=check)
    got = consumer.receive("devices/SN1/telemetry", _envelope("r1", ip_address="192.0.2.7"))
    assert got == Skipped(
        "devices/SN1/telemetry", "contract: field 'ip_address' is not in the schema"
    )
    assert consumer.counts == {"contract": 1}
