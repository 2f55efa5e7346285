"""AUTH, AUTH SECURE CHALLENGE / AUTH SECURE <hash>, and SELECT of a namespace."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from zgrid.zdb.commands.base import OK, check_namespace_name
from zgrid.zdb.context import ServerContext, Session
from zgrid.zdb.errors import CommandError
from zgrid.zdb.resp import simple

__all__ = ["auth", "secure_hash", "select"]


def secure_hash(nonce: str, password: str) -> str:
    """What a client sends after a challenge: hex SHA-1 of "<nonce>:<password>"."""
    text = f"{nonce}:{password}".encode("utf-8", "surrogateescape")
    return hashlib.sha1(text, usedforsecurity=False).hexdigest()


def _same_password(argument: bytes, password: str) -> bool:
    """Compare as bytes, as 0-db does: any byte may be in a password, in constant time."""
    given = argument.split(b"\0", 1)[0]
    return hmac.compare_digest(given, password.encode("utf-8", "surrogateescape"))


def _is_prefix(argument: bytes, word: bytes) -> bool:
    return bool(argument) and word.startswith(argument.upper())


def auth(context: ServerContext, session: Session, args: list[bytes]) -> bytes:
    admin = context.settings.admin_password
    if len(args) == 2:
        if admin is None:
            raise CommandError("Authentication disabled")
        if not args[1]:
            raise CommandError("Invalid argument")
        if len(args[1]) > 128:
            raise CommandError("Password too long")
        if not _same_password(args[1], admin):
            raise CommandError("Access denied")
        session.admin = True
        return OK
    if len(args) != 3:
        raise CommandError("Unexpected arguments")
    if not args[1] or not args[2]:
        raise CommandError("Invalid argument")
    if not _is_prefix(args[1], b"SECURE"):
        raise CommandError("Only SECURE extra method supported")
    if _is_prefix(args[2], b"CHALLENGE"):
        session.nonce = secrets.token_hex(8)
        return simple(session.nonce)
    if admin is None:
        raise CommandError("Authentication disabled")
    if session.nonce is None:
        raise CommandError("No CHALLENGE requested, secure authentication not available")
    if len(args[2]) != 40:
        raise CommandError("Invalid hash length")
    nonce, session.nonce = session.nonce, None  # single use, whatever the outcome
    if not hmac.compare_digest(args[2], secure_hash(nonce, admin).encode()):
        raise CommandError("Access denied")
    session.admin = True
    return OK


def select(context: ServerContext, session: Session, args: list[bytes]) -> bytes:
    if len(args) < 2:
        raise CommandError("Invalid argument")
    name = check_namespace_name(args[1])
    namespace = context.store.get(name)
    if namespace is None:
        raise CommandError("Namespace not found")
    writable = True
    if namespace.password:
        if len(args) == 2:
            if not namespace.public:
                raise CommandError("Namespace protected and private")
            writable = False
        elif len(args) > 4:
            raise CommandError("Too many arguments")
        elif len(args) == 3:
            if len(args[2]) > 255:
                raise CommandError("Password too long")
            if not _same_password(args[2], namespace.password):
                raise CommandError("Access denied")
        else:
            if not _is_prefix(args[2], b"SECURE"):
                raise CommandError("Only SECURE extra method supported")
            if session.nonce is None:
                raise CommandError("No CHALLENGE requested, secure authentication not available")
            if len(args[3]) != 40:
                raise CommandError("Invalid hash length")
            if not hmac.compare_digest(
                args[3], secure_hash(session.nonce, namespace.password).encode()
            ):
                raise CommandError("Access denied")
    session.namespace = namespace
    session.writable = writable
    return OK
