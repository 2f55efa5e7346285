"""The devnet's CA: made once and kept, a P-256 root valid for ten years whose key only
its owner reads, the same one for callers racing to make it."""

from __future__ import annotations

import datetime
import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from zgrid.devnet import DevnetError
from zgrid.devnet.ca import CA_NAME, ensure_ca


def test_the_ca_is_made_once_and_kept(tmp_path: Path) -> None:
    ca = ensure_ca(tmp_path / "ca")
    first = ca.certificate.read_bytes(), ca.key.read_bytes()
    assert ensure_ca(tmp_path / "ca") == ca
    assert (ca.certificate.read_bytes(), ca.key.read_bytes()) == first
    assert stat.S_IMODE(ca.key.stat().st_mode) == 0o600

    certificate = x509.load_pem_x509_certificate(first[0])
    public = certificate.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey) and public.curve.name == "secp256r1"
    assert certificate.subject == certificate.issuer
    assert CA_NAME in certificate.subject.rfc4514_string()
    public.verify(
        certificate.signature,
        certificate.tbs_certificate_bytes,
        ec.ECDSA(hashes.SHA256()),
    )
    constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert constraints.ca
    lifetime = certificate.not_valid_after_utc - certificate.not_valid_before_utc
    assert datetime.timedelta(days=3649) < lifetime < datetime.timedelta(days=3652)


def test_callers_racing_get_one_ca(tmp_path: Path) -> None:
    with ThreadPoolExecutor(4) as pool:
        made = list(pool.map(lambda _: ensure_ca(tmp_path).certificate.read_bytes(), range(8)))
    assert len(set(made)) == 1


def test_a_half_made_ca_is_made_again_and_a_mismatched_one_refused(tmp_path: Path) -> None:
    ca = ensure_ca(tmp_path)
    ca.certificate.unlink()  # a crash between writing the key and the certificate
    remade = ensure_ca(tmp_path)
    assert remade.certificate.exists()
    other = ensure_ca(tmp_path / "other")
    ca.key.write_bytes(other.key.read_bytes())
    with pytest.raises(DevnetError, match="is not the key of"):
        ensure_ca(tmp_path)
