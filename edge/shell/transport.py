"""Shell: owns the paho client; nothing else imports paho.

Theory of operation. One I/O thread per transport. It waits for a ``Connect`` command
(from the pure session), opens a *new* paho client for that connection (MQTT 5 or
3.1.1, the Will set for that session), performs the blocking TCP + TLS handshake,
then runs ``client.loop()`` until the connection ends. Every paho callback only builds
an event and calls ``queue.put_nowait``; the agent's main loop drains that queue and
drives the pure core. Publishing is called from the main thread; paho queues the packet
and wakes the I/O thread through its socket pair (we register a no-op
``on_socket_register_write`` so that paho never writes the TLS socket from two threads).

A fresh client per connection means paho keeps no state of its own across reconnects:
our durable outbox is the only queue, and in-flight items are re-sent from it.

Errors are translated here (httpx's ``map_httpcore_exceptions`` idea): ``ssl`` and
socket errors become ``ConnectFailed``/``ConnectionLost`` events with a sentence a person
can act on, and a publish refused locally becomes a ``TransportError``.
"""

from __future__ import annotations

import logging
import queue
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from edge.errors import TransportError
from edge.release import Sendable, only_sendable
from edge.session import (
    Connect,
    ConnectFailed,
    ConnectionLost,
    ConnectSucceeded,
    Endpoint,
    MessageReceived,
    Protocol,
    PublishAcked,
    Subscribed,
    TransportEvent,
)

logger = logging.getLogger(__name__)

# MQTT 5 CONNACK 0x84 "Unsupported Protocol Version"; MQTT 3.1.1 CONNACK return code 1.
_UNSUPPORTED_PROTOCOL_V5 = 0x84
_NOT_AUTHORIZED_CODES = {0x86, 0x87, 0x8C}  # bad user/password, not authorized, bad auth method
SESSION_EXPIRY_S = 24 * 3600  # the broker keeps our command subscription a day offline


def describe_tls_error(err: BaseException, endpoint: Endpoint) -> str:
    """Turn an ssl/socket error into a sentence that says what to check."""
    text = str(err)
    if isinstance(err, ssl.SSLCertVerificationError):
        detail = err.verify_message or text
        if "hostname" in detail.lower() or "IP address mismatch" in detail:
            return (
                f"broker certificate does not match {endpoint.host}: {detail} "
                "(check the broker host name and the server certificate's SAN)"
            )
        return (
            f"broker certificate rejected: {detail} "
            "(is tls.ca the CA that signed the broker's certificate?)"
        )
    lowered = text.lower()
    if "certificate expired" in lowered:
        return "the broker refused our device certificate: it has expired (issue a new one)"
    if "unknown ca" in lowered or "certificate unknown" in lowered or "bad certificate" in lowered:
        return (
            "the broker refused our device certificate: it was not signed by a CA the broker trusts"
        )
    if "certificate required" in lowered or "handshake failure" in lowered:
        return "the broker requires a client certificate and refused the one we sent (or none)"
    if "revoked" in lowered:
        return "the broker refused our device certificate: it has been revoked"
    if isinstance(err, ssl.SSLEOFError | ConnectionResetError | BrokenPipeError):
        return f"{endpoint} closed the connection during the TLS handshake (network down?)"
    if isinstance(err, ConnectionRefusedError):
        return f"nothing listens on {endpoint} (connection refused)"
    if isinstance(err, TimeoutError):
        return f"{endpoint} did not answer in time"
    return f"{type(err).__name__}: {text}"


class MqttTransport:
    """The MQTT connection of one device. See the module docstring for the threading."""

    def __init__(
        self,
        client_id: str,
        ssl_context: ssl.SSLContext | Callable[[], ssl.SSLContext],
        events: queue.Queue[TransportEvent],
        keepalive_s: int = 30,
        max_inflight: int = 100,
        connect_timeout_s: float = 5.0,
    ) -> None:
        self._client_id = client_id
        self._context = ssl_context
        self._events = events
        self._keepalive_s = keepalive_s
        self._max_inflight = max_inflight
        self._connect_timeout_s = connect_timeout_s
        self._requests: queue.Queue[tuple[Connect, Sendable | None] | None] = queue.Queue()
        self._stop = threading.Event()
        self._client: mqtt.Client | None = None
        self._client_lock = threading.Lock()
        self._protocol = Protocol.MQTT5
        self._last_error = ""
        self._thread = threading.Thread(target=self._run, name=f"mqtt-{client_id}", daemon=True)
        self._thread.start()

    # -- commands from the main thread -------------------------------------------------

    def connect(self, command: Connect, will: Sendable | None) -> None:
        """Open a connection after ``command.delay_s``; the outcome arrives as an event.
        The Will is a ``Sendable`` too (TypeError otherwise): the gate decided it."""
        self._requests.put((command, None if will is None else only_sendable(will)))

    @property
    def protocol(self) -> Protocol:
        return self._protocol

    def publish(self, message: Sendable) -> int:
        """Hand one message to paho and return its mid; the PUBACK arrives as an event.
        Only a ``Sendable`` (what the gate released) is accepted.

        Raises:
            TypeError: ``message`` is not a ``Sendable`` (a bug: it bypassed the gate).
            TransportError: not connected, or paho refused the message locally.
        """
        message = only_sendable(message)
        client = self._connected_client()
        info = client.publish(
            message.topic, message.payload, qos=message.qos, retain=message.retain
        )
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            raise TransportError(
                f"publish to {message.topic} refused locally: {mqtt.error_string(info.rc)}"
            )
        return int(info.mid)

    def subscribe(self, topic: str, qos: int = 1) -> int:
        """Subscribe; the SUBACK arrives as a ``Subscribed`` event carrying the mid.

        Raises:
            TransportError: not connected, or paho refused the request.
        """
        client = self._connected_client()
        rc, mid = client.subscribe(topic, qos=qos)
        if rc != MQTTErrorCode.MQTT_ERR_SUCCESS or mid is None:
            raise TransportError(f"subscribe to {topic} refused locally: {mqtt.error_string(rc)}")
        return int(mid)

    def disconnect(self, timeout_s: float = 2.0) -> None:
        """Close the connection cleanly (a DISCONNECT: the broker does not send the Will).

        Waits (up to ``timeout_s``) until the I/O thread has written what was queued and
        the DISCONNECT: a ``close`` right after would otherwise stop that thread first,
        and the broker, seeing the socket just close, would publish the Will (``offline``)
        after our ``stopped``."""
        with self._client_lock:
            client = self._client
        if client is None:
            return
        client.disconnect()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._client_lock:
                if self._client is not client:
                    return
            time.sleep(0.01)

    def drop(self) -> None:
        """Close the socket without DISCONNECT, as a dying link would (tests, faults)."""
        with self._client_lock:
            client = self._client
        sock = client.socket() if client is not None else None
        if sock is not None:
            sock.close()

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop the I/O thread (after ``disconnect`` if a clean goodbye is wanted)."""
        self._stop.set()
        self._requests.put(None)
        self._thread.join(timeout_s)

    def _connected_client(self) -> mqtt.Client:
        with self._client_lock:
            client = self._client
        if client is None or not client.is_connected():
            raise TransportError("not connected to the broker")
        return client

    # -- the I/O thread ----------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            request = self._requests.get()
            if request is None:
                return
            command, will = request
            if command.delay_s > 0 and self._stop.wait(command.delay_s):
                return
            try:
                self._serve_one_connection(command, will)
            except Exception as err:
                logger.exception("transport thread failed; reporting the connection as lost")
                self._events.put_nowait(ConnectionLost(f"internal error: {err}"))
            finally:
                with self._client_lock:
                    self._client = None

    def _new_client(self, protocol: Protocol, will: Sendable | None) -> mqtt.Client:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self._client_id,
            protocol=(
                MQTTProtocolVersion.MQTTv5
                if protocol is Protocol.MQTT5
                else MQTTProtocolVersion.MQTTv311
            ),
            clean_session=None if protocol is Protocol.MQTT5 else False,
            reconnect_on_failure=False,
        )
        context = self._context() if callable(self._context) else self._context
        client.tls_set_context(context)
        client.connect_timeout = self._connect_timeout_s
        client.max_inflight_messages_set(self._max_inflight)
        client.max_queued_messages_set(0)
        if will is not None:  # none where the policy does not disclose online status
            client.will_set(will.topic, will.payload, qos=1, retain=True)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        client.on_log = self._on_log
        # Never let paho write the TLS socket from the publishing thread (see docstring).
        client.on_socket_register_write = _ignore_socket
        client.on_socket_unregister_write = _ignore_socket
        return client

    def _serve_one_connection(self, command: Connect, will: Sendable | None) -> None:
        endpoint, protocol = command.endpoint, command.protocol
        self._protocol = protocol
        self._last_error = ""
        self._acked = False
        client = self._new_client(protocol, will)
        properties: Properties | None = None
        if protocol is Protocol.MQTT5:
            # paho's Properties.__init__ has no annotations.
            properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            properties.SessionExpiryInterval = SESSION_EXPIRY_S
        try:
            rc = client.connect(
                endpoint.host,
                endpoint.port,
                keepalive=self._keepalive_s,
                clean_start=False
                if protocol is Protocol.MQTT5
                else mqtt.MQTT_CLEAN_START_FIRST_ONLY,
                properties=properties,
            )
        except (ssl.SSLError, OSError) as err:
            self._events.put_nowait(
                ConnectFailed(
                    endpoint, protocol, describe_tls_error(err, endpoint), fatal=_is_fatal(err)
                )
            )
            return
        if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            self._events.put_nowait(ConnectFailed(endpoint, protocol, mqtt.error_string(rc)))
            return
        with self._client_lock:
            self._client = client
        self._endpoint = endpoint
        while not self._stop.is_set():
            rc = client.loop(timeout=1.0)
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                break
        if not self._acked:
            # The connection ended before a successful CONNACK: a refused connect.
            reason = self._last_error or mqtt.error_string(rc)
            self._events.put_nowait(
                ConnectFailed(
                    endpoint,
                    protocol,
                    _humanise_socket_error(reason, endpoint),
                    unsupported_protocol=self._unsupported,
                    fatal=self._fatal,
                )
            )

    # -- paho callbacks: build an event, put it, nothing else -------------------------

    _acked = False
    _unsupported = False
    _fatal = False
    _endpoint: Endpoint | None = None

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        code = int(reason_code.value)
        if reason_code.is_failure:
            self._unsupported = code == _UNSUPPORTED_PROTOCOL_V5 or (
                self._protocol is Protocol.MQTT311 and code == 1
            )
            self._fatal = code in _NOT_AUTHORIZED_CODES
            self._last_error = f"broker refused the connection: {reason_code} (code {code})"
            return
        self._acked = True
        self._unsupported = False
        endpoint = self._endpoint or Endpoint("?", 0)
        self._events.put_nowait(ConnectSucceeded(endpoint, self._protocol))

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.DisconnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if not self._acked:
            return  # reported as ConnectFailed by the I/O thread
        reason = (
            _humanise_socket_error(self._last_error, self._endpoint)
            if self._last_error
            else (f"{reason_code}")
        )
        self._events.put_nowait(ConnectionLost(reason))

    def _on_publish(
        self,
        client: mqtt.Client,
        userdata: Any,
        mid: int,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        self._events.put_nowait(PublishAcked(mid, int(reason_code.value), str(reason_code)))

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        self._events.put_nowait(MessageReceived(message.topic, bytes(message.payload)))

    def _on_subscribe(
        self,
        client: mqtt.Client,
        userdata: Any,
        mid: int,
        reason_codes: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        self._events.put_nowait(Subscribed(mid, tuple(int(rc.value) for rc in reason_codes)))

    def _on_log(self, client: mqtt.Client, userdata: Any, level: int, buf: str) -> None:
        if level == mqtt.MQTT_LOG_ERR:
            self._last_error = buf


def _ignore_socket(client: mqtt.Client, userdata: Any, sock: Any) -> None:
    """paho's socket-registration hooks, deliberately empty (see the module docstring)."""


def _is_fatal(err: BaseException) -> bool:
    return isinstance(err, ssl.SSLError)


def _humanise_socket_error(reason: str, endpoint: Endpoint | None) -> str:
    """paho logs ``failed to receive on socket: <ssl error>``; say what it means."""
    lowered = reason.lower()
    where = endpoint or Endpoint("broker", 0)
    for needle in ("certificate", "unknown ca", "handshake failure", "revoked"):
        if needle in lowered:
            return describe_tls_error(ssl.SSLError(reason), where)
    return reason
