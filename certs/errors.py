"""Pure: errors of the certificate tooling: one line, for the person at the keyboard."""

from __future__ import annotations


class CertError(Exception):
    """Bad input or an unusable certificate/key; the message is one line."""
