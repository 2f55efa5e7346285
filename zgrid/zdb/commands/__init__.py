"""The command handlers of the Zero-DB server, by 0-db command name."""

from __future__ import annotations

from zgrid.zdb.commands import auth, data, namespaces, replicate, scan, system
from zgrid.zdb.commands.base import Handler
from zgrid.zdb.commands.names import NAMES, match
from zgrid.zdb.commands.replicate import NO_REPLY

__all__ = ["NAMES", "NO_REPLY", "Handler", "build_handlers", "match"]


def build_handlers() -> dict[str, Handler]:
    """Every command name of the table and the function that runs it."""
    handlers: dict[str, Handler] = {
        "*": system.invalid,
        "WAIT": replicate.wait,
        "MIRROR": replicate.mirror,
        "MASTER": replicate.master,
        "PING": system.ping,
        "TIME": system.time_,
        "AUTH": auth.auth,
        "HOOKS": system.hooks,
        "INDEX": system.index,
        "DATA": system.data,
        "SET": data.set_,
        "SETX": data.set_,
        "GET": data.get,
        "MGET": data.mget,
        "DEL": data.delete,
        "EXISTS": data.exists,
        "CHECK": data.check,
        "SCAN": scan.scan,
        "SCANX": scan.scan,
        "RSCAN": scan.rscan,
        "KSCAN": scan.kscan,
        "HISTORY": scan.history,
        "KEYCUR": scan.keycur,
        "LENGTH": data.length,
        "KEYTIME": data.keytime,
        "INFO": system.info,
        "STOP": system.stop,
        "DBSIZE": namespaces.dbsize,
        "NSNEW": namespaces.nsnew,
        "NSDEL": namespaces.nsdel,
        "NSLIST": namespaces.nslist,
        "NSSET": namespaces.nsset,
        "NSINFO": namespaces.nsinfo,
        "NSJUMP": namespaces.nsjump,
        "SELECT": auth.select,
        "RELOAD": namespaces.reload,
        "FLUSH": namespaces.flush,
    }
    assert tuple(handlers) == NAMES
    return handlers
