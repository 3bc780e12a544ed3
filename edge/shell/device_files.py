"""Shell: what the agent opens at start and keeps on disk: its small state
(``agent.json``: accepted version, audio toggle, session counter), the consent state
(``consent.json``) and the encrypted outbox with its key.

The saving rules by who must act: a grant that cannot be saved is refused (``save_grant``
raises); a withdrawal or a lapse holds in memory at once and its save is retried after
every batch until it holds (``save_consent``/``retry``), so a reboot cannot bring an old
grant back unnoticed; the session counter and toggles never stop the agent on a full disk.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

from edge.audit import AuditEvent
from edge.config import AgentConfig
from edge.errors import StoreError
from edge.model import Count
from edge.outbox import Outbox
from edge.policy.consent import ConsentState
from edge.shell.consent_file import load_consent
from edge.shell.consent_file import save_consent as write_consent
from edge.shell.crypto import load_or_create_key
from edge.shell.recorder import Recorder
from edge.shell.state_file import AgentState, load_agent_state, save_agent_state
from edge.shell.store import OUTBOX_FILE, open_or_quarantine

logger = logging.getLogger(__name__)


class DeviceFiles:
    """``agent.json`` and ``consent.json`` in the state folder, read at start."""

    def __init__(self, state_dir: Path, default_version: str, counters: Counter[str]) -> None:
        state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._state_path = state_dir / "agent.json"
        self._consent_path = state_dir / "consent.json"
        self._counters = counters
        self.state = load_agent_state(self._state_path, default_version)
        self.consent_at_start: ConsentState = load_consent(self._consent_path)
        self._unsaved: ConsentState | None = None

    def save_state(self, state: AgentState) -> None:
        """Keep the new state; persist it, but never let a full disk stop the agent (it
        stays right in memory and is written with the next change)."""
        self.state = state
        try:
            save_agent_state(self._state_path, state)
        except OSError as err:
            self._counters[Count.STATE_WRITE_FAILED] += 1
            logger.error("cannot save agent state (%s); keeping it in memory", err.strerror)

    def save_grant(self, consent: ConsentState) -> None:
        """A grant that is not on disk must not take effect: after a reboot the device
        would not know it, and the app would believe it holds.

        Raises:
            StoreError: it could not be written (counted); the caller refuses the grant.
        """
        try:
            write_consent(self._consent_path, consent)
        except StoreError:
            self._counters[Count.CONSENT_WRITE_FAILED] += 1
            raise

    def save_consent(self, consent: ConsentState) -> None:
        """Save a withdrawal or a lapse, which took effect already; a failure is counted
        and retried by ``retry`` after every batch."""
        try:
            write_consent(self._consent_path, consent)
        except StoreError as err:
            self._counters[Count.CONSENT_WRITE_FAILED] += 1
            if self._unsaved is None:
                logger.error("%s; the change holds in memory and is retried", err)
            self._unsaved = consent
        else:
            self._unsaved = None

    def retry(self, consent: ConsentState) -> None:
        if self._unsaved is not None:
            self.save_consent(consent)


def open_outbox(config: AgentConfig, recorder: Recorder, synchronous: str) -> Outbox:
    """The encrypted outbox. A missing or wrong key beside an existing queue raises
    ``StoreKeyError`` (the queue stays as it is); an unreadable store file is moved aside,
    recorded, and a new one started."""
    state_dir = config.device.state_dir
    key = load_or_create_key(config.outbox_key_file, store=state_dir / OUTBOX_FILE)
    store, quarantined = open_or_quarantine(state_dir / OUTBOX_FILE, key, synchronous)
    if quarantined is not None:
        logger.error("outbox store was unreadable; quarantined as %s", quarantined.name)
        recorder.agent(
            AuditEvent.QUARANTINED, detail=f"outbox store quarantined: {quarantined.name}"
        )
    return Outbox(store, config.outbox.max_queue_bytes)
