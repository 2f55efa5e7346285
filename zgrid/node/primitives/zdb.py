"""The zdb primitive: one namespace per workload on the node's own Zero-DB server.

The namespace is named after the workload id; its maxsize is the workload's size, its
mode, password and public flag as the workload says (NSSET). Every provision sets every
property again, so a repeat after a crash between NSNEW and the last NSSET finishes it.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from zgrid.node.errors import ProvisionError
from zgrid.node.primitives.base import Observed, Provisioning, ResultData, WorkloadRef
from zgrid.node.zdbserver import ZdbServer
from zgrid.types import ZDB
from zgrid.zdb import ClientError, ConnectionLost, ZdbClient

__all__ = ["ZdbPrimitive", "namespace_info"]

_WORKLOAD_ID = re.compile(r"^[0-9]+-[0-9]+-[A-Za-z0-9_]+$")
_MODES = {"user": "userkey", "seq": "sequential"}
_PASSWORD_MAX = 63  # NSSET takes values of at most 63 bytes


def namespace_info(text: bytes) -> dict[str, str]:
    """NSINFO's "key: value" lines as a dict."""
    info = {}
    for line in text.decode(errors="replace").splitlines():
        key, sep, value = line.partition(": ")
        if sep and not key.startswith("#"):
            info[key] = value
    return info


def _mode_name(info: dict[str, str]) -> str:
    return "seq" if info.get("mode") == "sequential" else "user"


class ZdbPrimitive:
    """zdb workloads on ``server``; ``addresses()`` are the node's addresses to report."""

    def __init__(self, server: ZdbServer, *, addresses: Callable[[], list[str]]) -> None:
        self.server = server
        self.addresses = addresses

    def _result(self, name: str) -> ResultData:
        return {"namespace": name, "ips": self.addresses(), "port": self.server.port}

    async def _admin(self) -> ZdbClient:
        try:
            return await self.server.admin()
        except (ClientError, ConnectionLost):
            await self.server.ensure_running()  # dead or restarting: bring it back once
            try:
                return await self.server.admin()
            except (ClientError, ConnectionLost) as exc:
                raise ProvisionError(f"the node's Zero-DB server does not answer: {exc}") from exc

    @staticmethod
    async def _info(admin: ZdbClient, name: str) -> dict[str, str] | None:
        try:
            return namespace_info(await admin.execute("NSINFO", name))
        except ClientError as exc:
            if "not found" in str(exc).lower():
                return None
            raise

    @staticmethod
    def _data(item: Provisioning) -> ZDB:
        data = item.workload.data
        if not isinstance(data, ZDB):
            raise ProvisionError(f"workload {item.ref.id} is not a zdb")
        if data.password == "*" or "\0" in data.password:
            raise ProvisionError("a zdb password cannot be '*' or hold a NUL character")
        if len(data.password.encode()) > _PASSWORD_MAX:
            raise ProvisionError(f"a zdb password is at most {_PASSWORD_MAX} bytes long")
        return data

    async def _apply(self, item: Provisioning, *, update: bool) -> ResultData:
        data = self._data(item)
        name = item.ref.id
        admin = await self._admin()
        try:
            info = await self._info(admin, name)
            if info is None:
                await admin.nsnew(name)
                info = await self._info(admin, name) or {}
            used = int(info.get("next_internal_id", "0x0"), 16) or int(info.get("entries", "0"))
            if _mode_name(info) != data.mode:
                if update or used:
                    raise ProvisionError(
                        f"the mode of zdb namespace {name} cannot change"
                        f" ({_mode_name(info)} to {data.mode})"
                    )
                await admin.nsset(name, "mode", data.mode)
            stored = int(info.get("data_size_bytes", "0"))
            if data.size < stored:
                raise ProvisionError(
                    f"zdb namespace {name} holds {stored} bytes; a size of {data.size} is too small"
                )
            # The password first: from here on, nobody without it writes.
            await admin.nsset(name, "password", data.password or "*")
            await admin.nsset(name, "public", "1" if data.public else "0")
            await admin.nsset(name, "maxsize", str(data.size))
        except ClientError as exc:
            raise ProvisionError(f"zdb namespace {name}: {exc}") from exc
        except ConnectionLost as exc:
            raise ProvisionError(f"the node's Zero-DB server went away: {exc}") from exc
        finally:
            await admin.close()
        return self._result(name)

    async def provision(self, item: Provisioning) -> ResultData:
        return await self._apply(item, update=False)

    async def update(self, item: Provisioning) -> ResultData:
        """Size, password and public may change; a change of mode is refused."""
        return await self._apply(item, update=True)

    async def deprovision(self, ref: WorkloadRef) -> None:
        admin = await self._admin()
        try:
            await admin.execute("NSDEL", ref.id)
        except ClientError as exc:
            if "doesn't exists" not in str(exc) and "not found" not in str(exc).lower():
                raise ProvisionError(f"cannot remove zdb namespace {ref.id}: {exc}") from exc
        finally:
            await admin.close()

    async def inspect(self, ref: WorkloadRef) -> Observed:
        try:
            admin = await self.server.admin()
        except (ClientError, ConnectionLost) as exc:
            return Observed(exists=False, healthy=False, detail=f"zdb server down: {exc}")
        try:
            info = await self._info(admin, ref.id)
        finally:
            await admin.close()
        if info is None:
            return Observed(exists=False)
        detail = (
            f"{info.get('mode', '?')}, {info.get('entries', '?')} entries,"
            f" {info.get('data_size_bytes', '?')} of {info.get('data_limits_bytes', '?')} bytes"
        )
        return Observed(exists=True, detail=detail)

    async def present(self) -> set[str]:
        admin = await self._admin()
        try:
            names = await admin.execute("NSLIST")
        finally:
            await admin.close()
        decoded = (name.decode(errors="replace") for name in names)
        return {name for name in decoded if _WORKLOAD_ID.match(name)}
