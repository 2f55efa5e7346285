"""The field types every workload model shares: sizes, names, keys, addresses.

Integers and booleans are strict (no "5" for 5, no 1 for true) because a signed
document must mean exactly what its bytes say.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

__all__ = [
    "GIB",
    "MIB",
    "Bool",
    "Model",
    "Name",
    "Port",
    "Size",
    "Text",
    "UInt",
    "WireguardKey",
    "format_bytes",
]

MIB = 1024 * 1024
GIB = 1024 * MIB

UInt = Annotated[StrictInt, Field(ge=0)]
Size = Annotated[StrictInt, Field(ge=0, description="bytes")]
Port = Annotated[StrictInt, Field(ge=1, le=65535)]
Bool = StrictBool
Text = Annotated[StrictStr, Field(max_length=1024)]
Name = Annotated[StrictStr, Field(pattern=r"^[a-zA-Z0-9_]+$", min_length=1, max_length=36)]


def _wireguard_key(value: str) -> str:
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("must be a base64 WireGuard key") from exc
    if len(raw) != 32:
        raise ValueError(f"must be a base64 WireGuard key of 32 bytes, got {len(raw)} bytes")
    return value


WireguardKey = Annotated[StrictStr, AfterValidator(_wireguard_key)]


class Model(BaseModel):
    """Base of every zgrid data model: unknown fields are refused, instances are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def to_json_dict(self) -> dict[str, Any]:
        """The plain JSON form (only str, int, bool, None, list, dict)."""
        return self.model_dump(mode="json")


def format_bytes(value: int) -> str:
    """Bytes in the unit a person would use: 262144000 -> '250 MiB'."""
    for unit, size in (("GiB", GIB), ("MiB", MIB), ("KiB", 1024)):
        if value >= size and value % size == 0:
            return f"{value // size} {unit}"
    return f"{value} bytes"
