"""Topic names: one module builds them, and a bad serial never becomes a topic."""

from __future__ import annotations

import pytest

from edge.errors import InputError
from edge.topics import Channel, Topics


def test_topics_live_under_the_device_prefix() -> None:
    topics = Topics("SN0001")
    assert topics.of(Channel.ALARM_SNAPSHOT) == "devices/SN0001/alarm/snapshot"
    assert topics.of(Channel.COMMAND) == "devices/SN0001/cmd"
    assert topics.channel_of("devices/SN0001/cmd/result") is Channel.COMMAND_RESULT
    assert topics.channel_of("devices/SN0002/cmd") is None
    assert topics.channel_of("devices/SN0001/unknown") is None


@pytest.mark.parametrize("serial", ["", "sn1", "SN/1", "SN#1", "SN+", "A" * 33, "-SN1"])
def test_topics_refuse_serials_that_could_escape_the_prefix(serial: str) -> None:
    with pytest.raises(InputError, match="serial"):
        Topics(serial)


@pytest.mark.parametrize("prefix", ["", "a/#", "+", "dev/"])
def test_topics_refuse_wildcard_prefixes(prefix: str) -> None:
    with pytest.raises(InputError, match="prefix"):
        Topics("SN0001", prefix)
