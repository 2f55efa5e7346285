"""An in-memory index entry: where a key's current payload lives and how to find its history."""

from __future__ import annotations

from zgrid.zdb.formats import INDEX_FLAG_DELETED, INDEX_ITEM

__all__ = ["CURSOR_SIZE", "Entry", "pack_cursor", "unpack_cursor"]

CURSOR_SIZE = 17


class Entry:
    """One key's current version (or, in seq mode, one slot)."""

    __slots__ = (
        "crc",
        "dataid",
        "flags",
        "idxoffset",
        "indexid",
        "key",
        "length",
        "offset",
        "parentid",
        "parentoff",
        "previous",
        "timestamp",
    )

    def __init__(
        self,
        key: bytes,
        *,
        dataid: int,
        offset: int,
        length: int,
        crc: int,
        timestamp: int,
        indexid: int = 0,
        idxoffset: int = 0,
        previous: int = 0,
        flags: int = 0,
        parentid: int = 0,
        parentoff: int = 0,
    ) -> None:
        self.key = key
        self.dataid = dataid
        self.offset = offset
        self.length = length
        self.crc = crc
        self.timestamp = timestamp
        self.indexid = indexid
        self.idxoffset = idxoffset
        self.previous = previous
        self.flags = flags
        self.parentid = parentid
        self.parentoff = parentoff

    @property
    def deleted(self) -> bool:
        return bool(self.flags & INDEX_FLAG_DELETED)

    def pack(self) -> bytes:
        """The index item of this entry, as 0-db stores it."""
        return (
            INDEX_ITEM.pack(
                len(self.key),
                self.offset,
                self.length,
                self.previous,
                self.flags,
                self.dataid,
                self.timestamp,
                self.crc,
                self.parentid,
                self.parentoff,
            )
            + self.key
        )

    def copy(self) -> Entry:
        return Entry(
            self.key,
            dataid=self.dataid,
            offset=self.offset,
            length=self.length,
            crc=self.crc,
            timestamp=self.timestamp,
            indexid=self.indexid,
            idxoffset=self.idxoffset,
            previous=self.previous,
            flags=self.flags,
            parentid=self.parentid,
            parentoff=self.parentoff,
        )


def pack_cursor(idlength: int, indexid: int, length: int, idxoffset: int, crc: int) -> bytes:
    """0-db's 17-byte scan cursor: key length, index file id, payload length, index offset, crc."""
    return (
        bytes([idlength])
        + indexid.to_bytes(4, "little")
        + length.to_bytes(4, "little")
        + idxoffset.to_bytes(4, "little")
        + crc.to_bytes(4, "little")
    )


def unpack_cursor(cursor: bytes) -> tuple[int, int, int, int, int]:
    """(idlength, indexid, length, idxoffset, crc) of a cursor; ValueError if it is not 17 bytes."""
    if len(cursor) != CURSOR_SIZE:
        raise ValueError("cursor must be 17 bytes")
    return (
        cursor[0],
        int.from_bytes(cursor[1:5], "little"),
        int.from_bytes(cursor[5:9], "little"),
        int.from_bytes(cursor[9:13], "little"),
        int.from_bytes(cursor[13:17], "little"),
    )
