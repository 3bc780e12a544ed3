"""Shell: systemd's notify protocol by hand (one datagram to ``$NOTIFY_SOCKET``).

No dependency: the protocol is a text datagram on an AF_UNIX socket; a name starting with
'@' is in the abstract namespace. Outside systemd (no ``NOTIFY_SOCKET``) every call is a
no-op, so the daemon runs the same on a desk and under ``Type=notify``.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Mapping

logger = logging.getLogger(__name__)


class Notifier:
    """READY once, WATCHDOG at half of ``$WATCHDOG_USEC``, STOPPING at shutdown."""

    def __init__(
        self,
        environ: Mapping[str, str] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        env = os.environ if environ is None else environ
        name = env.get("NOTIFY_SOCKET", "")
        self._address = "\0" + name[1:] if name.startswith("@") else name
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        watchdog = usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid()))
        self._interval = int(usec) / 2e6 if watchdog else None
        self._monotonic = monotonic
        self._last_ping = float("-inf")
        self.ready = False

    def send(self, state: str) -> None:
        """Send one state line; a lost datagram is logged, never fatal."""
        if not self._address:
            return
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.sendto(state.encode(), self._address)
        except OSError as err:
            logger.warning("sd_notify %s failed: %s", state.split("=")[0], err)

    def tick(self, ready: bool) -> None:
        """Called once per main-loop turn: READY=1 the first time ``ready``, then WATCHDOG."""
        if ready and not self.ready:
            self.ready = True
            self.send("READY=1\nSTATUS=running")
        if self._interval is not None:
            now = self._monotonic()
            if now - self._last_ping >= self._interval:
                self._last_ping = now
                self.send("WATCHDOG=1")

    def stopping(self) -> None:
        self.send("STOPPING=1")
