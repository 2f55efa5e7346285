"""What command handlers see: the connection's session and the server's shared state."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from zgrid.zdb.namespace import Namespace
from zgrid.zdb.store import Store

__all__ = ["Connection", "Limits", "ServerContext", "Session", "Settings", "Stats"]


@dataclass(frozen=True)
class Limits:
    """What one client, and all of them together, may make the server hold."""

    max_clients: int = 10_000  # connections at once; more are refused with an error reply
    idle_timeout: float = 0.0  # seconds without a request before a client is closed; 0: never
    max_reply: int = 32 * 1024 * 1024  # bytes of one reply (MGET, KSCAN); more is refused
    max_pending: int = 256 * 1024 * 1024  # reply bytes all clients have not read yet


@dataclass(frozen=True)
class Settings:
    admin_password: str | None = None
    protect: bool = False
    revision: str = "zgrid"
    limits: Limits = field(default_factory=Limits)


@dataclass
class Stats:
    commands_executed: int = 0
    commands_failed: int = 0
    commands_unauthorized: int = 0
    clients_lifetime: int = 0
    network_rx_bytes: int = 0
    network_tx_bytes: int = 0


class Connection(Protocol):
    """What the server needs of a client connection: notify it (WAIT, MIRROR), size replies."""

    def push(self, reply: bytes) -> None: ...

    def close(self) -> None: ...

    def room_for(self, size: int) -> bool:
        """Whether a reply of ``size`` bytes may be built now (the server's reply budget)."""
        ...


@dataclass(eq=False)
class Session:
    """One client's state: where it is, what it may do, what it waits for."""

    ident: int
    namespace: Namespace
    writable: bool
    admin: bool
    connection: Connection | None = None
    nonce: str | None = None
    mirror: bool = False
    master: bool = False
    detached: bool = False
    waiting: tuple[str, float] | None = None  # command table name, deadline (monotonic)
    last_request: float = field(default_factory=time.monotonic)  # for the idle timeout


@dataclass(eq=False)
class ServerContext:
    store: Store
    settings: Settings
    stats: Stats = field(default_factory=Stats)
    sessions: set[Session] = field(default_factory=set)
    boot_time: int = field(default_factory=lambda: int(time.time()))
    instance: int = field(default_factory=lambda: random.randint(1, 2**30))
    stop: Callable[[], None] = lambda: None
    _next_ident: int = 0
    listening: bool = False  # may anyone be waiting or mirroring

    def listeners(self) -> list[Session]:
        """Sessions that want to hear of other clients' commands (WAIT, MIRROR).

        Checked after every command, so the common case (nobody listens) must
        cost one attribute test per session only when someone might.
        """
        if not self.listening:
            return []
        found = [s for s in self.sessions if s.mirror or s.waiting is not None]
        if not found:
            self.listening = False
        return found

    def listen(self) -> None:
        """Called when a session starts waiting or mirroring."""
        self.listening = True

    def new_session(self, connection: Connection | None = None) -> Session:
        self._next_ident += 1
        self.stats.clients_lifetime += 1
        session = Session(
            ident=self._next_ident,
            namespace=self.store.default,
            writable=not self.settings.protect,
            admin=self.settings.admin_password is None,
            connection=connection,
        )
        self.sessions.add(session)
        return session
