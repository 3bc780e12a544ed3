"""Shell: PEM files on disk. Keys are 0600 in a 0700 folder and never overwritten without force."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from certs.errors import CertError
from certs.issue import Issued, PrivateKey


def write_pem(path: Path, data: bytes, private: bool, force: bool = False) -> None:
    """Write one PEM file; a private key gets mode 0600 and its folder 0700.

    Raises:
        CertError: the file exists and ``force`` is False.
    """
    if path.exists() and not force:
        raise CertError(f"{path} exists; use --force to overwrite it")
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if private:
        os.chmod(path.parent, 0o700)
    mode = 0o600 if private else 0o644
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(path, mode)


def key_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def write_issued(issued: Issued, cert_path: Path, key_path: Path, force: bool = False) -> None:
    """Write the key first (0600), then the certificate."""
    if not force:
        for path in (cert_path, key_path):
            if path.exists():
                raise CertError(f"{path} exists; use --force to overwrite it")
    write_pem(key_path, key_pem(issued.key), private=True, force=force)
    write_pem(cert_path, cert_pem(issued.cert), private=False, force=force)


def load_cert(path: Path) -> x509.Certificate:
    """Raises CertError on a missing or malformed file."""
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except FileNotFoundError as err:
        raise CertError(f"certificate not found: {path}") from err
    except (OSError, ValueError) as err:
        raise CertError(f"not a PEM certificate: {path}") from err


def load_key(path: Path) -> PrivateKey:
    """Raises CertError on a missing, malformed or non-EC key."""
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except FileNotFoundError as err:
        raise CertError(f"key not found: {path}") from err
    except (OSError, ValueError, TypeError) as err:
        raise CertError(f"not an unencrypted PEM private key: {path}") from err
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise CertError(f"expected an EC private key: {path}")
    return key


def load_issued(cert_path: Path, key_path: Path) -> Issued:
    return Issued(load_key(key_path), load_cert(cert_path))
