"""The devnet's certificate authority: the root that gateway nodes' Caddy issues from.

Made once per devnet and kept, so certificates issued by any node's Caddy verify against
the same root across restarts: `curl --cacert ca.pem https://name.gw.example/` checks a
gateway of the devnet the way a browser checks a public one. The key is ECDSA P-256
(Caddy signs with ECDSA or RSA keys only) and readable by its owner only.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from zgrid.atomic import write_atomic
from zgrid.devnet.errors import DevnetError

__all__ = ["CA_NAME", "CertificateAuthority", "ensure_ca"]

CA_NAME = "zgrid devnet CA"
_VALIDITY = datetime.timedelta(days=3650)
_BACKDATE = datetime.timedelta(hours=1)  # a machine whose clock runs a little behind accepts it


@dataclass(frozen=True, slots=True)
class CertificateAuthority:
    """Where the root certificate (PEM) and its private key (PEM, mode 0600) are."""

    certificate: Path
    key: Path


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    # Two commands starting at once must not each make a key and keep the other's cert.
    fd = os.open(directory / "ca.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _usable(ca: CertificateAuthority) -> bool:
    """Whether both files are there and the key is the certificate's."""
    try:
        certificate = x509.load_pem_x509_certificate(ca.certificate.read_bytes())
        key = serialization.load_pem_private_key(ca.key.read_bytes(), password=None)
    except FileNotFoundError:
        return False
    except (OSError, ValueError, TypeError) as exc:
        raise DevnetError(
            f"the devnet CA in {ca.certificate.parent} cannot be read: {exc}"
        ) from exc
    if certificate.public_key() != key.public_key():
        raise DevnetError(
            f"the devnet CA in {ca.certificate.parent}: {ca.key.name} is not the key of "
            f"{ca.certificate.name}"
        )
    return True


def _make(ca: CertificateAuthority) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "zgrid devnet"),
            x509.NameAttribute(NameOID.COMMON_NAME, CA_NAME),
        ]
    )
    now = datetime.datetime.now(datetime.UTC)
    public = key.public_key()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + _VALIDITY)
        # Caddy signs leaves with an intermediate of its own: the path needs one CA below.
        .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # The key first: a crash between the two writes leaves no certificate, so the next
    # call makes both again instead of trusting a root without its key.
    ca.certificate.unlink(missing_ok=True)
    write_atomic(ca.key, key_pem, mode=0o600)
    write_atomic(ca.certificate, certificate.public_bytes(serialization.Encoding.PEM))


def ensure_ca(directory: Path) -> CertificateAuthority:
    """The devnet's CA in ``directory`` (``ca.pem``, ``ca.key``), made the first time only."""
    directory = Path(directory).absolute()
    ca = CertificateAuthority(certificate=directory / "ca.pem", key=directory / "ca.key")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with _locked(directory):
            if not _usable(ca):
                _make(ca)
    except OSError as exc:
        raise DevnetError(f"cannot make the devnet CA in {directory}: {exc}") from exc
    return ca
