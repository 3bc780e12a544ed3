"""Pure: errors of the agent, split by who must act (h11's local/remote split, httpx's tree).

    EdgeError
    ├── ConfigError      the operator: a bad config file; carries every issue with its path
    ├── PolicyError      the policy author: a manifest that names an unknown field or purpose
    ├── InputError       the caller: a malformed frame, record, command or receipt
    ├── TransportError   the environment: broker, TLS or network; retryable
    └── StoreError       the local disk: a corrupt or unwritable store; fatal, stop and alert
        ├── StoreFullError    the disk is full: keep what is in memory, retry, count it
        └── StoreKeyError     the key is missing or does not open the store: stop, and never
                              quarantine or empty the queue (the data is fine; the key is not)

A *denial* by the policy gate is a value (``Decision``), never an exception.
"""

from __future__ import annotations

from dataclasses import dataclass


class EdgeError(Exception):
    """Root of every error the agent raises on purpose."""


@dataclass(frozen=True, slots=True)
class ConfigIssue:
    """One problem in a config file: where it is and what is wrong."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class ConfigError(EdgeError):
    """The operator's config is invalid; ``issues`` lists every problem found."""

    def __init__(self, issues: list[ConfigIssue]) -> None:
        self.issues = list(issues)
        super().__init__("; ".join(str(issue) for issue in self.issues))


class PolicyError(EdgeError):
    """A policy manifest is malformed (unknown field, purpose or basis)."""


class InputError(EdgeError):
    """The caller passed something malformed (frame, record, command, receipt)."""


class TransportError(EdgeError):
    """The broker, TLS or the network failed; the caller may retry."""


class StoreError(EdgeError):
    """The durable store cannot be read or written; stop and alert, never empty it."""


class StoreFullError(StoreError):
    """The disk is full: nothing was written; the caller keeps the data and retries."""


class StoreKeyError(StoreError):
    """The outbox key is missing or wrong for an existing store: the queue is intact and
    must stay as it is (an unmounted key volume must not cost the queued alarms)."""
