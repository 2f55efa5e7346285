"""The local store under ``$ZGRID_HOME``: networks in clear, identities and records sealed.

Layout (every file 0600, every directory 0700)::

    config.json                  networks and the current one (clear)
    store.json                   how the key is had (passphrase + Argon2id salt and cost,
                                 or key file) and a check value that only the key opens
    identities/NAME.json         a sealed mnemonic; its name and address in clear
    records/NETWORK/NAME.json    a sealed JSON document the deployer keeps

Networks need no key. The key is had on the first secret access and kept for the life
of the :class:`Store`; a plain ``identity.json`` of an older home is moved in at that
moment (:mod:`zgrid.client.store.migrate`). Changes that read, then write (networks, a new
store, a new identity, the migration) hold ``.lock`` so two commands cannot lose one
another's change; every file is replaced atomically and durably.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from mnemonic import Mnemonic

from zgrid.atomic import fsync_directory
from zgrid.client.errors import NetworkNotConfigured, StoreError, StoreLocked, WrongPassphrase
from zgrid.client.store import migrate
from zgrid.client.store.config import (
    IDENTITY_NAME,
    RECORD_NAME,
    ConfigDocument,
    NetworkConfig,
    check_name,
    parse_config,
    render_config,
)
from zgrid.client.store.crypto import (
    DEFAULT_KDF,
    SALT_SIZE,
    KdfLimits,
    check_value,
    create_key_file,
    derive_key,
    key_from_file_bytes,
    read_key_file,
    verify_check,
)
from zgrid.client.store.sealed import (
    locked,
    make_private_dir,
    os_failure,
    read_bounded,
    read_header,
    read_sealed,
    sweep_temporaries,
    write_private,
    write_sealed,
)
from zgrid.client.store.unlock import KEY_FILE_VARIABLE, PASSPHRASE_VARIABLE, Unlocker
from zgrid.identity import Identity, MnemonicError, normalize_mnemonic

__all__ = ["MAX_RECORD_BYTES", "Notice", "Store"]

MAX_RECORD_BYTES = 4 * 1024 * 1024
MAX_RECORDS = 10_000
_MAX_PHRASE_CHARS = 1024
_SMALL_FILE = 64 * 1024
_RECORD_FILE = MAX_RECORD_BYTES * 4 // 3 + _SMALL_FILE  # base64 of the box, and its header
_STORE_VERSION = 1
_words = frozenset(Mnemonic("english").wordlist)


@dataclass(frozen=True)
class Notice:
    """Something the store did that the person should hear about (never a secret)."""

    kind: Literal["created", "migrated"]
    message: str


def _checked_mnemonic(phrase: str) -> str:
    """``phrase`` normalised; errors say which positions are wrong, never which words."""
    if len(phrase) > _MAX_PHRASE_CHARS:
        raise MnemonicError(f"a mnemonic is at most {_MAX_PHRASE_CHARS} characters")
    try:
        return normalize_mnemonic(phrase)
    except MnemonicError as exc:
        words = phrase.lower().split()
        unknown = [str(i + 1) for i, word in enumerate(words) if word not in _words]
        if not unknown or "not in the BIP39" not in str(exc):
            raise
        which = (
            f"word {unknown[0]} is" if len(unknown) == 1 else f"words {', '.join(unknown[:5])} are"
        )
        raise MnemonicError(f"mnemonic {which} not in the BIP39 English list") from None


class Store:
    """The store in ``home``; ``unlocker`` says how to get its key when a secret is needed.

    ``kdf`` is the Argon2id cost of a store made by this object (a store keeps its own).
    ``on_notice`` hears of a key file made or a plain identity moved in (also kept in
    ``notices``). ``migrate_legacy=False`` leaves a plain ``identity.json`` where it is and
    reads it as the ``default`` identity (a node's key directory, which the node reads).
    """

    def __init__(
        self,
        home: Path,
        *,
        unlocker: Unlocker | None = None,
        kdf: KdfLimits | None = None,
        on_notice: Callable[[Notice], None] | None = None,
        migrate_legacy: bool = True,
    ) -> None:
        self.home = home
        self.unlocker = unlocker or Unlocker()
        self.kdf = kdf or DEFAULT_KDF
        self.kdf.check()
        self.notices: list[Notice] = []
        self._on_notice = on_notice
        self._migrate = migrate_legacy
        self._key: bytes | None = None

    def __repr__(self) -> str:
        return f"Store({str(self.home)!r}, unlocked={self._key is not None})"

    @property
    def config_path(self) -> Path:
        return self.home / "config.json"

    @property
    def meta_path(self) -> Path:
        return self.home / "store.json"

    def identity_path(self, name: str = "default") -> Path:
        return self.home / "identities" / f"{check_name(name, 'identity', IDENTITY_NAME)}.json"

    def record_path(self, network: str, name: str) -> Path:
        check_name(network, "network")
        return self.home / "records" / network / f"{check_name(name, 'record', RECORD_NAME)}.json"

    # --- networks (no key needed) ---------------------------------------------------------

    def _read_config(self) -> ConfigDocument:
        raw = read_bounded(self.config_path, _SMALL_FILE * 4)
        if raw is None:
            return ConfigDocument(networks={}, current=None)
        return parse_config(raw, str(self.config_path))

    def _write_config(self, config: ConfigDocument) -> None:
        write_private(self.config_path, render_config(config))

    def networks(self) -> list[NetworkConfig]:
        return [network for _, network in sorted(self._read_config().networks.items())]

    @property
    def current_network(self) -> str | None:
        return self._read_config().current

    def network(self, name: str | None = None) -> NetworkConfig:
        """The network ``name``, or the current one; NetworkNotConfigured naming the fix."""
        config = self._read_config()
        if name is None:
            if config.current is None:
                raise NetworkNotConfigured(
                    "no network configured: run `zgrid network add NAME --ledger URL`"
                    if not config.networks
                    else "no current network: run `zgrid network use NAME` (configured: "
                    + ", ".join(sorted(config.networks))
                    + ")"
                )
            name = config.current
        found = config.networks.get(name)
        if found is None:
            raise self._unknown_network(name, config)
        return found

    def _unknown_network(self, name: str, config: ConfigDocument) -> NetworkNotConfigured:
        known = ", ".join(sorted(config.networks)) or "none"
        return NetworkNotConfigured(
            f"no network {name!r} in {self.home} (configured: {known}); "
            f"add it with `zgrid network add {name} --ledger URL`"
        )

    def add_network(self, config: NetworkConfig, *, overwrite: bool = False) -> None:
        """Add (or with ``overwrite`` replace) a network; the first one becomes the current."""
        with locked(self.home):
            document = self._read_config()
            if config.name in document.networks and not overwrite:
                raise StoreError(
                    f"network {config.name!r} already exists; refusing to replace it (use --force)"
                )
            networks = {**document.networks, config.name: config}
            self._write_config(ConfigDocument(networks, document.current or config.name))

    def remove_network(self, name: str) -> None:
        """Forget a network (its records stay); the current one leaves no current network."""
        with locked(self.home):
            document = self._read_config()
            if name not in document.networks:
                raise self._unknown_network(name, document)
            networks = {key: value for key, value in document.networks.items() if key != name}
            current = None if document.current == name else document.current
            self._write_config(ConfigDocument(networks, current))

    def use_network(self, name: str) -> None:
        with locked(self.home):
            document = self._read_config()
            if name not in document.networks:
                raise self._unknown_network(name, document)
            self._write_config(ConfigDocument(document.networks, name))

    # --- the key --------------------------------------------------------------------------

    def _notify(self, kind: Literal["created", "migrated"], message: str) -> None:
        notice = Notice(kind, message)
        self.notices.append(notice)
        if self._on_notice is not None:
            self._on_notice(notice)

    def _read_meta(self) -> dict[str, Any] | None:
        raw = read_bounded(self.meta_path, _SMALL_FILE)
        if raw is None:
            return None
        try:
            meta = json.loads(raw)
            if not isinstance(meta, dict) or meta.get("version") != _STORE_VERSION:
                raise ValueError("not a version 1 store file")
            if meta.get("kind") not in ("passphrase", "key-file"):
                raise ValueError(f"unknown kind {meta.get('kind')!r}")
            if not isinstance(meta.get("check"), str):
                raise ValueError("no check value")
            if meta["kind"] == "passphrase":
                kdf = meta["kdf"]
                if kdf.get("algorithm") != "argon2id13":
                    raise ValueError(f"unknown key derivation {kdf.get('algorithm')!r}")
                meta["salt"] = bytes.fromhex(kdf["salt"])
                meta["limits"] = KdfLimits(int(kdf["opslimit"]), int(kdf["memlimit"]))
                meta["limits"].check()
        except (ValueError, KeyError, TypeError, AttributeError, StoreError) as exc:
            raise StoreError(f"{self.meta_path} is damaged: {exc}") from exc
        return meta

    def _secret_key(self) -> bytes:
        """The store's key: had once (made with the store if there is none yet)."""
        if self._key is not None:
            return self._key
        meta = self._read_meta()
        key = None
        if meta is None:
            with locked(self.home):
                meta = self._read_meta()  # another command may have made it meanwhile
                if meta is None:
                    key = self._create()
        if key is None:
            assert meta is not None
            key = self._open(meta)
        if self._migrate:
            self._move_legacy_in(key)
        self._key = key
        return key

    def _create(self) -> bytes:
        unlocker = self.unlocker
        document: dict[str, Any] = {"version": _STORE_VERSION}
        if unlocker.key_file is not None:
            if create_key_file(unlocker.key_file):
                self._notify(
                    "created",
                    f"created the key file {unlocker.key_file} for the store in {self.home}: "
                    "keep it safe and private, it opens every secret there",
                )
            key = key_from_file_bytes(read_key_file(unlocker.key_file))
            document["kind"] = "key-file"
        else:
            passphrase = unlocker.passphrase
            if passphrase is None and unlocker.prompt is not None:
                passphrase = unlocker.prompt(f"New passphrase for the store in {self.home}", True)
            if passphrase is None:
                raise StoreLocked(
                    f"the store in {self.home} needs a key to keep secrets: set "
                    f"{PASSPHRASE_VARIABLE}, or {KEY_FILE_VARIABLE} to a key file (made there "
                    "if missing), or run the command on a terminal to choose a passphrase"
                )
            salt = secrets.token_bytes(SALT_SIZE)
            key = derive_key(passphrase, salt, self.kdf)
            document["kind"] = "passphrase"
            document["kdf"] = {
                "algorithm": "argon2id13",
                "salt": salt.hex(),
                "opslimit": self.kdf.opslimit,
                "memlimit": self.kdf.memlimit,
            }
        document["check"] = check_value(key)
        write_private(self.meta_path, (json.dumps(document, indent=2) + "\n").encode("utf-8"))
        return key

    def _open(self, meta: dict[str, Any]) -> bytes:
        unlocker = self.unlocker
        if meta["kind"] == "key-file":
            if unlocker.key_file is None:
                raise StoreLocked(
                    f"the store in {self.home} opens with a key file: set "
                    f"{KEY_FILE_VARIABLE} to its path"
                )
            key = key_from_file_bytes(read_key_file(unlocker.key_file))
            if not verify_check(key, meta["check"]):
                raise WrongPassphrase(
                    f"the key file {unlocker.key_file} does not open the store in {self.home} "
                    "(it was made with another key file)"
                )
            return key
        passphrase = unlocker.passphrase
        if passphrase is None and unlocker.prompt is not None:
            passphrase = unlocker.prompt(f"Passphrase of the store in {self.home}", False)
        if passphrase is None:
            also = f" (it opens with a passphrase, not {KEY_FILE_VARIABLE})"
            raise StoreLocked(
                f"the store in {self.home} is locked: set {PASSPHRASE_VARIABLE}, or run the "
                "command on a terminal to type the passphrase"
                + (also if unlocker.key_file is not None else "")
            )
        key = derive_key(passphrase, meta["salt"], meta["limits"])
        if not verify_check(key, meta["check"]):
            raise WrongPassphrase(f"wrong passphrase for the store in {self.home}")
        return key

    def _move_legacy_in(self, key: bytes) -> None:
        legacy = migrate.read_legacy(self.home)
        if legacy is None:
            return
        with locked(self.home):
            path = self.identity_path("default")
            existing = self._sealed_identity("default", key)
            if existing is None:
                self._seal_identity("default", legacy.mnemonic, legacy.identity, key)
                if self._sealed_identity("default", key) != legacy.mnemonic:
                    raise StoreError(f"{path} did not read back as written; {legacy.path} kept")
            elif existing != legacy.mnemonic:
                stored = Identity.from_mnemonic(existing).address
                raise StoreError(
                    f"{legacy.path} holds identity {legacy.identity.address}, but the store in "
                    f"{self.home} already has another default identity ({stored}); refusing "
                    "to replace either: import the file's mnemonic under another name "
                    "(`zgrid identity import --name NAME`), then move the file away"
                )
            migrate.destroy_legacy(legacy.path)
        self._notify(
            "migrated",
            f"moved the plain identity {legacy.path} ({legacy.identity.address}) into the "
            f"encrypted store as 'default' ({path}) and removed the plain file",
        )

    # --- identities -----------------------------------------------------------------------

    def _seal_identity(self, name: str, mnemonic: str, identity: Identity, key: bytes) -> None:
        header = {"kind": "identity", "name": name, "address": identity.address}
        write_sealed(self.identity_path(name), key, header, {"mnemonic": mnemonic})

    def _sealed_identity(self, name: str, key: bytes) -> str | None:
        path = self.identity_path(name)
        header = read_header(path, _SMALL_FILE)
        if header is None:
            return None
        address = header.get("address")
        if not isinstance(address, str):
            raise StoreError(f"{path} is damaged: it has no address")
        expected = {"kind": "identity", "name": name, "address": address}
        payload = read_sealed(path, key, expected, _SMALL_FILE)
        assert payload is not None
        phrase = payload.get("mnemonic")
        try:
            if not isinstance(phrase, str):
                raise MnemonicError("not a string")
            normalized = normalize_mnemonic(phrase)
        except MnemonicError:
            raise StoreError(f"{path} is damaged: it holds no valid mnemonic") from None
        if Identity.from_mnemonic(normalized).address != address:
            raise StoreError(f"{path} is damaged: its mnemonic does not derive to {address}")
        return normalized

    def _legacy_default(self, name: str) -> migrate.LegacyIdentity | None:
        """A plain identity.json read in place (only when told not to migrate it)."""
        if self._migrate or name != "default" or self.identity_path(name).exists():
            return None
        return migrate.read_legacy(self.home)

    def add_identity(
        self, mnemonic: str, *, name: str = "default", overwrite: bool = False
    ) -> Identity:
        """Seal ``mnemonic`` as identity ``name``; refuse to replace one unless ``overwrite``."""
        path = self.identity_path(name)
        normalized = _checked_mnemonic(mnemonic)
        identity = Identity.from_mnemonic(normalized)
        key = self._secret_key()
        with locked(self.home):
            header = read_header(path, _SMALL_FILE)
            if header is not None and not overwrite:
                raise StoreError(
                    f"the store in {self.home} already holds identity {name!r} "
                    f"({header.get('address')}); refusing to overwrite it (use --force)"
                )
            self._seal_identity(name, normalized, identity, key)
        return identity

    def mnemonic(self, name: str = "default") -> str:
        """The mnemonic of identity ``name`` (a secret: the key is had if needed)."""
        path = self.identity_path(name)
        legacy = self._legacy_default(name)
        if legacy is not None:
            return legacy.mnemonic
        if self._migrate and migrate.legacy_path(self.home).exists():
            self._secret_key()  # moves the plain file in, so the identity is found below
        if not path.exists():
            raise self._no_identity(name)
        phrase = self._sealed_identity(name, self._secret_key())
        if phrase is None:
            raise StoreError(f"identity {name!r} vanished from {self.home} while read")
        return phrase

    def identity(self, name: str = "default") -> Identity:
        """The signing identity ``name``."""
        return Identity.from_mnemonic(self.mnemonic(name))

    def address(self, name: str = "default") -> str:
        """The address of identity ``name``, read in clear (no key needed)."""
        for known, address in self.identities():
            if known == name:
                return address
        check_name(name, "identity", IDENTITY_NAME)
        raise self._no_identity(name)

    def _no_identity(self, name: str) -> StoreError:
        create = "" if name == "default" else f" --name {name}"
        return StoreError(
            f"no identity in {self.home} named {name!r} (create one with "
            f"`zgrid identity new{create}` or `import{create}`)"
        )

    def identities(self) -> list[tuple[str, str]]:
        """``(name, address)`` of each identity, read in clear (no key needed)."""
        found: dict[str, str] = {}
        directory = self.home / "identities"
        for path in sorted(directory.glob("*.json")) if directory.is_dir() else []:
            name = path.stem
            if not IDENTITY_NAME.fullmatch(name):
                continue
            header = read_header(path, _SMALL_FILE)
            if header is not None and isinstance(header.get("address"), str):
                found[name] = header["address"]
        if "default" not in found and migrate.legacy_path(self.home).exists():
            legacy = migrate.read_legacy(self.home)
            if legacy is not None:
                found["default"] = legacy.identity.address
        return sorted(found.items())

    # --- records --------------------------------------------------------------------------

    def put_record(self, network: str, name: str, document: dict[str, Any]) -> None:
        """Seal ``document`` as record ``name`` of ``network``: the old one or this, never half."""
        path = self.record_path(network, name)
        if not isinstance(document, dict):
            raise StoreError(f"record {name!r} must be a JSON object")
        try:
            size = len(json.dumps(document, allow_nan=False, separators=(",", ":")))
        except (TypeError, ValueError) as exc:
            raise StoreError(f"record {name!r} is not JSON: {exc}") from exc
        if size > MAX_RECORD_BYTES:
            raise StoreError(f"record {name!r} is {size} bytes, more than {MAX_RECORD_BYTES}")
        key = self._secret_key()
        make_private_dir(path.parent)
        sweep_temporaries(path.parent)
        header = {"kind": "record", "network": network, "name": name}
        write_sealed(path, key, header, {"document": document})

    def record(self, network: str, name: str) -> dict[str, Any] | None:
        """Record ``name`` of ``network``, None if there is none."""
        path = self.record_path(network, name)
        if not path.exists():
            return None
        header = {"kind": "record", "network": network, "name": name}
        payload = read_sealed(path, self._secret_key(), header, _RECORD_FILE)
        if payload is None:
            return None
        document = payload.get("document")
        if not isinstance(document, dict):
            raise StoreError(f"{path} is damaged: its document is not an object")
        return document

    def record_names(self, network: str) -> list[str]:
        """The names of ``network``'s records (no key needed)."""
        directory = self.home / "records" / check_name(network, "network")
        if not directory.is_dir():
            return []
        try:
            names = sorted(
                path.stem for path in directory.glob("*.json") if RECORD_NAME.fullmatch(path.stem)
            )
        except OSError as exc:
            raise os_failure("list", directory, exc) from exc
        if len(names) > MAX_RECORDS:
            raise StoreError(f"{directory} holds more than {MAX_RECORDS} records")
        return names

    def records(self, network: str) -> list[dict[str, Any]]:
        """Every record of ``network``, by name."""
        found = (self.record(network, name) for name in self.record_names(network))
        return [document for document in found if document is not None]

    def drop_record(self, network: str, name: str) -> bool:
        """Remove record ``name`` of ``network`` durably; False if there was none."""
        path = self.record_path(network, name)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise os_failure("remove", path, exc) from exc
        fsync_directory(path.parent)
        return True
