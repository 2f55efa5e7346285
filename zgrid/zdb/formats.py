"""0-db's on-disk formats: data and index file headers and entries, the namespace descriptor.

Everything is little-endian and packed, exactly as the C implementation
(threefoldtech/0-db) writes it, so a data directory moves between the two.
CRC is CRC32C (polynomial 0x82F63B78) started at 0 with no final inversion.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import crc32c as _crc32c

__all__ = [
    "DATA_ENTRY",
    "DATA_FLAG_DELETED",
    "DATA_HEADER",
    "DATA_MAGIC",
    "DATA_VERSION",
    "INDEX_FLAG_DELETED",
    "INDEX_HEADER",
    "INDEX_ITEM",
    "INDEX_MAGIC",
    "INDEX_VERSION",
    "MODE_SEQ",
    "MODE_USER",
    "NAMESPACE_FILE",
    "NS_FLAG_EXTENDED",
    "NS_FLAG_PUBLIC",
    "NS_FLAG_WORM",
    "NS_HEADER",
    "NS_VERSION",
    "DataEntry",
    "IndexItem",
    "NamespaceDescriptor",
    "crc32c",
    "data_file_name",
    "index_file_name",
]

DATA_MAGIC = b"DAT0"
DATA_VERSION = 3
INDEX_MAGIC = b"IDX0"
INDEX_VERSION = 4
NS_VERSION = 1
NAMESPACE_FILE = "zdb-namespace"

MODE_USER = 0
MODE_SEQ = 1

DATA_FLAG_DELETED = 1
INDEX_FLAG_DELETED = 1

NS_FLAG_PUBLIC = 1
NS_FLAG_WORM = 2
NS_FLAG_EXTENDED = 4

# magic, version, created, opened, fileid
DATA_HEADER = struct.Struct("<4sIQQI")
# idlength, datalength, previous, crc, flags, timestamp (then id, then payload)
DATA_ENTRY = struct.Struct("<BIIIBI")
# magic, version, created, opened, fileid, mode
INDEX_HEADER = struct.Struct("<4sIQQIB")
# idlength, offset, length, previous, flags, dataid, timestamp, crc, parentid, parentoff (then id)
INDEX_ITEM = struct.Struct("<BIIIBIIIII")
# version, namelength, passlength, maxsize, flags (then name, then password)
NS_HEADER = struct.Struct("<IBBQB")

assert DATA_HEADER.size == 28 and DATA_ENTRY.size == 18
assert INDEX_HEADER.size == 29 and INDEX_ITEM.size == 34 and NS_HEADER.size == 15


_standard_crc32c = _crc32c.crc32c


def crc32c(data: bytes | memoryview) -> int:
    """0-db's CRC32C: the standard table, initial value 0, no final inversion."""
    # The library inverts on the way in and out; starting from ~0 and inverting the
    # result undoes both, which leaves 0-db's variant.
    return int(_standard_crc32c(data, 0xFFFFFFFF)) ^ 0xFFFFFFFF


def data_file_name(fileid: int) -> str:
    return f"d{fileid}"


def index_file_name(fileid: int) -> str:
    return f"i{fileid}"


@dataclass(frozen=True, slots=True)
class DataEntry:
    """One entry header of a data file (the id and payload follow it on disk)."""

    idlength: int
    datalength: int
    previous: int
    crc: int
    flags: int
    timestamp: int

    def pack(self, key: bytes) -> bytes:
        return (
            DATA_ENTRY.pack(
                self.idlength, self.datalength, self.previous, self.crc, self.flags, self.timestamp
            )
            + key
        )

    @classmethod
    def unpack(cls, buffer: bytes | memoryview, offset: int = 0) -> DataEntry:
        return cls(*DATA_ENTRY.unpack_from(buffer, offset))


@dataclass(slots=True)
class IndexItem:
    """One entry of an index file: where a key's payload is, and its history link."""

    key: bytes
    offset: int
    length: int
    previous: int
    flags: int
    dataid: int
    timestamp: int
    crc: int
    parentid: int
    parentoff: int

    @classmethod
    def unpack(
        cls, buffer: bytes | memoryview, offset: int = 0, idlength: int | None = None
    ) -> IndexItem:
        """Read an item; ``idlength`` overrides the stored key length (0-db's cursors carry their own)."""
        stored, *fields = INDEX_ITEM.unpack_from(buffer, offset)
        idlength = stored if idlength is None else idlength
        start = offset + INDEX_ITEM.size
        key = bytes(buffer[start : start + idlength])
        if len(key) != idlength:
            raise ValueError("index item truncated")
        return cls(key, *fields)

    @property
    def size(self) -> int:
        return INDEX_ITEM.size + len(self.key)


@dataclass(frozen=True, slots=True)
class NamespaceDescriptor:
    """The `zdb-namespace` file: name, password, maxsize, public and worm flags."""

    name: str
    password: str = ""
    maxsize: int = 0
    public: bool = True
    worm: bool = False

    def pack(self) -> bytes:
        """The descriptor's bytes; ValueError when a field does not fit 0-db's format."""
        # Names and passwords are the client's bytes (kept through surrogateescape).
        name = self.name.encode("utf-8", "surrogateescape")
        password = self.password.encode("utf-8", "surrogateescape")
        if len(name) > 255:
            raise ValueError("namespace name longer than 255 bytes")
        if len(password) > 255:
            raise ValueError("password longer than 255 bytes")
        if not 0 <= self.maxsize < 1 << 64:
            raise ValueError(f"maxsize {self.maxsize} is not a 64-bit unsigned number")
        flags = (
            NS_FLAG_EXTENDED
            | (NS_FLAG_PUBLIC if self.public else 0)
            | (NS_FLAG_WORM if self.worm else 0)
        )
        return (
            NS_HEADER.pack(NS_VERSION, len(name), len(password), self.maxsize, flags)
            + name
            + password
        )

    @classmethod
    def unpack(cls, raw: bytes) -> NamespaceDescriptor:
        """Read a descriptor; ValueError when it is short, of another version, or cut."""
        if len(raw) < NS_HEADER.size:
            raise ValueError(f"descriptor is {len(raw)} bytes, shorter than its header")
        version, namelength, passlength, maxsize, flags = NS_HEADER.unpack_from(raw)
        if version != NS_VERSION:
            raise ValueError(f"unsupported namespace descriptor version {version}")
        start = NS_HEADER.size
        if len(raw) < start + namelength + passlength:
            raise ValueError(
                f"descriptor is {len(raw)} bytes, its name and password need"
                f" {start + namelength + passlength}"
            )
        name = raw[start : start + namelength].decode("utf-8", "surrogateescape")
        password = raw[start + namelength : start + namelength + passlength]
        return cls(
            name=name,
            password=password.decode("utf-8", "surrogateescape"),
            maxsize=maxsize,
            public=bool(flags & NS_FLAG_PUBLIC),
            worm=bool(flags & NS_FLAG_WORM),
        )
