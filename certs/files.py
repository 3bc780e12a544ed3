"""Shell: PEM files on disk. Keys are 0600, new folders 0700; no overwrite without force."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from certs.errors import CertError
from certs.issue import Issued, PrivateKey


def _make_dirs(directory: Path) -> None:
    """Create missing folders as 0700 (explicit chmod: the umask must not widen or narrow it).

    Folders that already exist are left alone: the caller chose their mode.
    """
    missing = [d for d in (directory, *directory.parents) if not d.exists()]
    for folder in reversed(missing):
        folder.mkdir(mode=0o700)
        os.chmod(folder, 0o700)


def write_pem(path: Path, data: bytes, private: bool, force: bool = False) -> None:
    """Write one PEM file; a private key gets mode 0600, new folders 0700.

    Without ``force`` the file is created with O_EXCL, so an existing file (or one created
    meanwhile by another process) is never replaced.

    Raises:
        CertError: the file exists and ``force`` is False, or it cannot be written.
    """
    mode = 0o600 if private else 0o644
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if force else os.O_EXCL)
    try:
        _make_dirs(path.parent)
        fd = os.open(path, flags, mode)
    except FileExistsError as err:
        raise CertError(f"{path} exists; use --force to overwrite it") from err
    except OSError as err:
        raise CertError(f"cannot write {path}: {err.strerror}") from err
    try:
        os.fchmod(fd, mode)  # an overwritten file keeps its old mode otherwise
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def key_pem(key: PrivateKey) -> bytes:
    """Unencrypted PKCS#8 PEM: brokers and the agent read keys without a passphrase."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def cert_pem(cert: x509.Certificate) -> bytes:
    """The certificate as PEM."""
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
    except OSError as err:
        raise CertError(f"cannot read {path}: {err.strerror}") from err
    except ValueError as err:
        raise CertError(f"not a PEM certificate: {path}") from err


def load_key(path: Path) -> PrivateKey:
    """Raises CertError on a missing, malformed or non-EC key."""
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except FileNotFoundError as err:
        raise CertError(f"key not found: {path}") from err
    except OSError as err:
        raise CertError(f"cannot read {path}: {err.strerror}") from err
    except (ValueError, TypeError) as err:
        raise CertError(f"not an unencrypted PEM private key: {path}") from err
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise CertError(f"expected an EC private key: {path}")
    return key


def load_issued(cert_path: Path, key_path: Path) -> Issued:
    """A key and its certificate.

    Raises:
        CertError: either file is missing or malformed, or the key is not the cert's.
    """
    issued = Issued(load_key(key_path), load_cert(cert_path))
    if issued.key.public_key() != issued.cert.public_key():
        raise CertError(f"{key_path} is not the key of {cert_path}")
    return issued
