"""What the hub's API answers and takes, as its OpenAPI describes them: the JSON answers
as pydantic models (their fields in the order the hub has always sent them), and the
binary bodies, headers and signed-request scheme FastAPI cannot see in a route that reads
its request itself."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from zgrid.flist.hub.auth import BODY_HASH_HEADER, FLIST_SIGNATURE_HEADER, SCHEME
from zgrid.flist.hub.limits import MAX_BLOCK_BYTES, MAX_FLIST_BYTES, MAX_MISSING_IDS, NAME_PATTERN

__all__ = [
    "BLOCK_BODY",
    "BLOCK_ID_PATTERN",
    "FLIST_BODY",
    "FLIST_HASH_PATTERN",
    "FLIST_NAME_PATTERN",
    "MISSING_IDS_BODY",
    "SECURITY_SCHEME",
    "SIGNATURE_DESCRIPTION",
    "DeletedFlist",
    "FlistSummary",
    "Health",
    "OwnerCount",
    "PublishedFlist",
    "StoredBlock",
    "binary_answer",
    "binary_body",
    "json_body",
    "signed_request",
]

BLOCK_ID_PATTERN = r"^[0-9a-fA-F]{64}$"
FLIST_HASH_PATTERN = r"^[0-9a-f]{64}$"
# NAME_PATTERN, less "." and "..", which check_name refuses as well.
FLIST_NAME_PATTERN = r"^(?!\.\.?$)" + NAME_PATTERN.pattern.removeprefix("^")
_BODY_HASH_PATTERN = r"^[0-9a-f]{64}$"
_SIGNATURE_PATTERN = r"^[0-9a-fA-F]{128}$"
SECURITY_SCHEME = "ZgridSignature"


class _Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Health(_Answer):
    status: Literal["ok"]
    version: str
    blocks: str = Field(description="the URL of the hub's blocks, for a block route")


class StoredBlock(_Answer):
    id: str = Field(pattern=FLIST_HASH_PATTERN, description="the block's id, lower-case hex")
    size: int = Field(ge=0, description="bytes stored")


class OwnerCount(_Answer):
    owner: int = Field(ge=0, description="a twin that publishes flists here")
    count: int = Field(ge=1, description="how many flists it publishes")


class FlistSummary(_Answer):
    name: str
    hash: str = Field(pattern=FLIST_HASH_PATTERN, description="BLAKE2b-256 of the .fl")
    size: int = Field(ge=0, description="bytes of the .fl")
    updated: int = Field(description="unix seconds of the last push")


class PublishedFlist(_Answer):
    owner: int = Field(ge=0)
    name: str
    hash: str = Field(pattern=FLIST_HASH_PATTERN, description="BLAKE2b-256 of the .fl")
    size: int = Field(ge=0, description="bytes of the .fl")
    url: str = Field(description="where the flist is pulled from")


class DeletedFlist(_Answer):
    owner: int = Field(ge=0)
    name: str
    deleted: Literal[True]


def _header(name: str, description: str, pattern: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "header",
        "required": True,
        "description": description,
        "schema": {"type": "string", "pattern": pattern},
    }


_BODY_HASH = _header(
    BODY_HASH_HEADER,
    "BLAKE2b-256 of the body (of no bytes when there is none), covered by the signature",
    _BODY_HASH_PATTERN,
)
_FLIST_SIGNATURE = _header(
    FLIST_SIGNATURE_HEADER,
    "the twin's ed25519 signature of BLAKE2b-256 of \"zgrid-flist/1\\n{twin}\\n{name}\\n"
    '{content hash}", kept and served to every puller',
    _SIGNATURE_PATTERN,
)


def signed_request(*, flist_signature: bool = False) -> dict[str, Any]:
    """``openapi_extra`` of a write: the signature scheme and the headers it needs."""
    headers = [_BODY_HASH, _FLIST_SIGNATURE] if flist_signature else [_BODY_HASH]
    return {"security": [{SECURITY_SCHEME: []}], "parameters": headers}


def binary_body(description: str, *, limit: int) -> dict[str, Any]:
    """A required ``application/octet-stream`` request body of at most ``limit`` bytes."""
    return {
        "required": True,
        "description": f"{description} (at most {limit} bytes)",
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }


def json_body(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "required": True,
        "description": description,
        "content": {"application/json": {"schema": schema}},
    }


MISSING_IDS_BODY = json_body(
    {
        "type": "array",
        "items": {"type": "string", "pattern": BLOCK_ID_PATTERN},
        "maxItems": MAX_MISSING_IDS,
    },
    "block ids (64 hex digits each)",
)
BLOCK_BODY = binary_body(
    "the block, sealed and compressed; it must hash to its id", limit=MAX_BLOCK_BYTES
)
FLIST_BODY = binary_body("the .fl, its blocks routed to this hub", limit=MAX_FLIST_BYTES)


def binary_answer(description: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    """A 200 ``application/octet-stream`` answer with these (always sent) headers."""
    answer: dict[str, Any] = {
        "description": description,
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
    if headers:
        answer["headers"] = {
            name: {"required": True, "description": text, "schema": {"type": "string"}}
            for name, text in headers.items()
        }
    return answer


SIGNATURE_DESCRIPTION = (
    f"`{SCHEME} twin=<id>,time=<unix seconds>,nonce=<32 hex>,signature=<128 hex>`: the twin's "
    'ed25519 signature of BLAKE2b-256 of "zgrid-hub-request/2\\n{METHOD}\\n{host}\\n{path}\\n'
    f"{{query}}\\n{{time}}\\n{{nonce}}\\n{{body hash}}\", the body hash being {BODY_HASH_HEADER}'s; "
    "each nonce is accepted once"
)
