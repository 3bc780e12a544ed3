"""A backend consumer to copy: every device message, once, in about 30 lines of wiring.

    python examples/consumer.py HOST:PORT CA CERT KEY [--group NAME]

Subscribes over mutual TLS with MQTT 5. Where the broker offers shared subscriptions,
the event channels go to ``$share/<group>/devices/+/...`` so that several instances of
this consumer split the load; the retained state topics (birth, availability) are
subscribed directly, since a shared subscription gets no retained messages. Each message
goes through ``edge.consumer.Consumer`` (de-duplication by ``record_id``, stale Wills
ignored, the AsyncAPI contract checked) and what should be acted on is printed as one
JSON line: ``{"serial", "channel", "record_id"}``. Ctrl-C stops it.
"""

from __future__ import annotations

import argparse
import json
import ssl
import sys
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from edge.consumer import Consumer, Delivery
from firmware_sim.contract import default_contract

STATE = ("birth", "availability")  # retained: subscribed directly


def main() -> None:
    args = _arguments()
    host, _, port = args.address.rpartition(":")
    consumer = Consumer(check=default_contract().check)
    context = ssl.create_default_context(cafile=args.ca)
    context.load_cert_chain(args.cert, args.key)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5)
    client.tls_set_context(context)

    def on_connect(c: mqtt.Client, _: Any, flags: Any, rc: Any, props: Any) -> None:
        if getattr(props, "SharedSubscriptionAvailable", 1) == 1:  # absent means yes
            topics = [(f"$share/{args.group}/devices/#", 1)]
            topics += [(f"devices/+/{name}", 1) for name in STATE]
        else:
            topics = [("devices/#", 1)]
        c.subscribe(topics)

    def on_message(_: mqtt.Client, __: Any, message: mqtt.MQTTMessage) -> None:
        outcome = consumer.receive(message.topic, bytes(message.payload))
        if isinstance(outcome, Delivery):
            line = {"serial": outcome.serial, "channel": outcome.channel}
            print(json.dumps({**line, "record_id": outcome.record_id}), flush=True)

    client.on_connect, client.on_message = on_connect, on_message
    client.connect(host, int(port))
    try:
        client.loop_forever()
    except KeyboardInterrupt:
        print(json.dumps({"counts": consumer.counts}), file=sys.stderr, flush=True)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for name in ("address", "ca", "cert", "key"):
        parser.add_argument(name)
    parser.add_argument("--group", default="backend")
    return parser.parse_args()


if __name__ == "__main__":
    main()
