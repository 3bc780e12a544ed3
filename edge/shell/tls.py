"""Shell: builds the one TLS context the transport uses (mutual TLS, hostname checked).

Built once at start-up and handed to paho with ``tls_set_context``; ``tls_insecure_set``
is never used. Bad files become a ``ConfigError`` naming the file, not an ``ssl`` trace.
"""

from __future__ import annotations

import os
import ssl
import stat
from dataclasses import dataclass
from pathlib import Path

from edge.errors import ConfigError, ConfigIssue


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """The device's trust anchor and identity, as paths."""

    ca_cert: Path
    cert: Path
    key: Path


def check_key_permissions(key: Path, where: str) -> list[ConfigIssue]:
    """A private key readable by group or others is refused: the device identity would leak."""
    try:
        mode = key.stat().st_mode
    except OSError as err:
        return [ConfigIssue(where, f"cannot read key file {key}: {err.strerror}")]
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        return [
            ConfigIssue(
                where,
                f"key file {key} is accessible by group/others (mode {stat.S_IMODE(mode):04o}); "
                f"run: chmod 600 {key}",
            )
        ]
    return []


def build_ssl_context(files: TlsFiles) -> ssl.SSLContext:
    """A client context for mutual TLS: verify the broker against ``ca_cert``, check its
    hostname, present the device certificate; TLS 1.2 or newer.

    Raises:
        ConfigError: a file is missing, unreadable, or not a valid PEM certificate/key.
    """
    issues: list[ConfigIssue] = []
    for where, path in (
        ("tls.ca", files.ca_cert),
        ("tls.cert", files.cert),
        ("tls.key", files.key),
    ):
        if not os.access(path, os.R_OK):
            issues.append(ConfigIssue(where, f"file not found or unreadable: {path}"))
    if issues:
        raise ConfigError(issues)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    try:
        context.load_verify_locations(cafile=str(files.ca_cert))
    except (ssl.SSLError, OSError) as err:
        raise ConfigError(
            [ConfigIssue("tls.ca", f"not a PEM CA certificate: {files.ca_cert} ({err})")]
        ) from err
    try:
        context.load_cert_chain(certfile=str(files.cert), keyfile=str(files.key))
    except (ssl.SSLError, OSError) as err:
        raise ConfigError(
            [
                ConfigIssue(
                    "tls.cert", f"certificate/key pair unusable: {files.cert}, {files.key} ({err})"
                )
            ]
        ) from err
    return context


class TlsIdentity:
    """The device's TLS context, rebuilt when its certificate or key file changes.

    Certificate rotation: provisioning writes a new certificate and key in place; the
    next connection uses them, without restarting the agent. The context is built once
    per version of the files, not per connection.
    """

    def __init__(self, files: TlsFiles) -> None:
        self.files = files
        self._stamp: tuple[float, ...] = ()
        self._context: ssl.SSLContext | None = None

    def _mtimes(self) -> tuple[float, ...]:
        stamps = []
        for path in (self.files.ca_cert, self.files.cert, self.files.key):
            try:
                stamps.append(path.stat().st_mtime)
            except OSError:
                stamps.append(-1.0)
        return tuple(stamps)

    def context(self) -> ssl.SSLContext:
        """The current context; a rebuild that fails keeps the previous one.

        Raises:
            ConfigError: only when no context could ever be built.
        """
        stamp = self._mtimes()
        if self._context is None or stamp != self._stamp:
            try:
                self._context = build_ssl_context(self.files)
                self._stamp = stamp
            except ConfigError:
                if self._context is None:
                    raise
        return self._context
