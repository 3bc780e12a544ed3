"""Pure: broker permission files for a fleet: a Mosquitto ACL and NATS users.

Topic layout: a device writes only under ``<prefix>/<serial>/`` and reads only its own
``<prefix>/<serial>/cmd``; an observer (a backend) reads everything and may send
commands. On Mosquitto the user is the certificate CN (``use_identity_as_username``), so
one pattern (``%u``) covers every device; on NATS with ``verify_and_map`` the user is the
certificate subject (``CN=SN0001``) and each device gets its own entry.

Mosquitto refuses ``%u`` substitution for user names containing ``+``, ``#`` or ``/``;
``SERIAL_PATTERN`` excludes them, so every serial the CA issues works in the pattern.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from certs.errors import CertError
from certs.issue import validate_name, validate_serial

# One or more plain topic levels: no wildcards, no empty level, no '$' (broker-internal).
_PREFIX_PATTERN = re.compile(r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$")


def _validate_prefix(topic_prefix: str) -> str:
    if not _PREFIX_PATTERN.match(topic_prefix):
        raise CertError(
            f"malformed topic prefix {topic_prefix!r}: expected levels of letters, digits, '_', '-'"
        )
    return topic_prefix


def mosquitto_acl(observer_names: Sequence[str], topic_prefix: str = "devices") -> str:
    """The ``acl_file`` text (Mosquitto 2.0 syntax).

    ``pattern`` lines apply to every user, observers included; an observer gains nothing
    from them beyond its own ``user`` block.

    Raises:
        CertError: a malformed observer name or topic prefix.
    """
    prefix = _validate_prefix(topic_prefix)
    lines = [
        "# Written by certs.acl. Devices: CN = serial = user name.",
        "# Observers (backends) read everything and may send commands.",
    ]
    for name in observer_names:
        validate_name(name)
        lines += [
            f"user {name}",
            "topic read #",
            f"topic write {prefix}/+/cmd",
            "",
        ]
    lines += [
        "# Every other user is a device, confined to its own prefix.",
        f"pattern write {prefix}/%u/#",
        f"pattern read {prefix}/%u/cmd",
        f"pattern read {prefix}/%u/cmd/#",
        "",
    ]
    return "\n".join(lines)


def _quoted(items: Sequence[str]) -> str:
    return ", ".join(f'"{item}"' for item in items)


def nats_accounts(
    serials: Sequence[str], observer_names: Sequence[str], topic_prefix: str = "devices"
) -> str:
    """An ``authorization { users = [...] }`` block for nats-server 2.9 MQTT.

    MQTT ``/`` becomes ``.`` in NATS subjects, and an MQTT filter ``x/#`` maps to both
    ``x`` and ``x.>``. A QoS 1 subscription is a JetStream durable whose delivery subject
    is ``$MQTT.sub.<nuid>``, so a user with permissions needs subscribe on ``$MQTT.sub.>``
    (nats-server MQTT docs, "Special permissions"). Observers keep publish on ``$MQTT.>``
    and ``$JS.>`` (an assumption kept from the cluster tests: a backend that also speaks
    NATS may manage JetStream); devices get neither.

    Raises:
        CertError: a malformed serial, observer name or topic prefix.
    """
    prefix = _validate_prefix(topic_prefix).replace("/", ".")
    entries = []
    for serial in serials:
        validate_serial(serial)
        own = f"{prefix}.{serial}"
        publish = [f"{own}", f"{own}.>"]
        subscribe = [f"{own}.cmd", f"{own}.cmd.>", "$MQTT.sub.>"]
        entries.append(
            f'    {{ user: "CN={serial}", permissions: {{ '
            f"publish: {{ allow: [{_quoted(publish)}] }}, "
            f"subscribe: {{ allow: [{_quoted(subscribe)}] }} }} }}"
        )
    for name in observer_names:
        validate_name(name)
        entries.append(
            f'    {{ user: "CN={name}", permissions: {{ '
            f'publish: {{ allow: ["{prefix}.*.cmd", "$MQTT.>", "$JS.>"] }}, '
            f'subscribe: {{ allow: [">"] }} }} }}'
        )
    body = "\n".join(entries)
    return f"authorization {{\n  users = [\n{body}\n  ]\n}}\n"
