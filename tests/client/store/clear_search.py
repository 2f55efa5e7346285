"""Searching a store on disk for secrets in clear: each phrase, its words, its seed's forms.

Every file under $ZGRID_HOME (recursively, as bytes) is searched for each phrase, its
words one by one (outside the sealed boxes, where random base64 could spell a short word,
and leaving out words the store writes itself, like "network"), the 32-byte seed raw, in
hex and in base64, and the other secret strings given.
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

from zgrid.identity import Identity

__all__ = ["assert_nothing_in_clear", "clear_vocabulary", "store_files"]


def store_files(home: Path) -> dict[Path, bytes]:
    found = {path: path.read_bytes() for path in home.rglob("*") if path.is_file()}
    assert found, "the store wrote nothing"
    return found


def _without_boxes(raw: bytes) -> bytes:
    """A store file with its sealed boxes (ciphertext, base64) left out."""
    try:
        document = json.loads(raw)
    except ValueError:
        return raw
    if isinstance(document, dict) and "box" in document:
        document["box"] = ""
    return json.dumps(document).encode()


_CLEAR_FIELDS = ("name", "kind", "network", "identity", "ledger", "hub", "explorer", "current")


def _structure_words(document: object, into: set[str]) -> None:
    if isinstance(document, dict):
        for key, value in document.items():
            into.update(re.findall(r"[a-z]+", str(key)))
            if key in _CLEAR_FIELDS and isinstance(value, str):
                into.update(re.findall(r"[a-z]+", value))
            _structure_words(value, into)


def clear_vocabulary(files: dict[Path, bytes], home: Path) -> set[str]:
    """The lowercase words the store writes in clear itself: field names, names, URLs, paths."""
    words = set(re.findall(r"[a-z]+", str(home)))
    for path, raw in files.items():
        words.update(re.findall(r"[a-z]+", str(path.relative_to(home))))
        try:
            _structure_words(json.loads(raw), words)
        except ValueError:
            continue
    return words


def _forms(identity: Identity) -> list[bytes]:
    seed = identity.seed
    return [
        seed,
        seed.hex().encode(),
        seed.hex().upper().encode(),
        base64.b64encode(seed),
        base64.urlsafe_b64encode(seed),
        base64.b64encode(seed).rstrip(b"="),
    ]


def assert_nothing_in_clear(home: Path, phrases: list[str], secrets_: list[str]) -> None:
    files = store_files(home)
    vocabulary = clear_vocabulary(files, home)
    for path, raw in files.items():
        clear = _without_boxes(raw)
        for phrase in phrases:
            assert phrase.encode() not in raw, f"{path} holds a mnemonic"
            assert phrase.upper().encode() not in raw, f"{path} holds a mnemonic"
            for form in _forms(Identity.from_mnemonic(phrase)):
                assert form not in raw, f"{path} holds a private key"
            for word in set(phrase.split()) - vocabulary:
                pattern = rb"(?<![a-zA-Z])" + word.encode() + rb"(?![a-zA-Z])"
                assert not re.search(pattern, clear), f"{path} holds the word {word!r}"
        for secret in secrets_:
            assert secret.encode() not in raw, f"{path} holds {secret[:4]}…"
