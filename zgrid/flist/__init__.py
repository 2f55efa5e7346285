"""flist: the image format of zgrid (rfs's .fl): pack, unpack, Docker/OCI import, block
stores, the hub and the lazy FUSE mount."""

from zgrid.flist.block import BLOCK_SIZE, Block, decode_block, encode_block
from zgrid.flist.errors import (
    BlockError,
    BlockNotFound,
    FlistError,
    FormatError,
    HubError,
    ImageError,
    MountError,
    StoreError,
    StoreUrlError,
    UnsafeFlist,
)
from zgrid.flist.fetch import BlockFetcher
from zgrid.flist.meta import FlistReader, FlistWriter, Inode, Route
from zgrid.flist.mount import mount
from zgrid.flist.oci import image_entries
from zgrid.flist.pack import PackReport, pack_directory, pack_entries
from zgrid.flist.safety import check_tree
from zgrid.flist.stores import BlockStore, Router, open_store, parse_route, public_url
from zgrid.flist.tree import TreeEntry, walk_directory
from zgrid.flist.unpack import UnpackReport, unpack

__all__ = [
    "BLOCK_SIZE",
    "Block",
    "BlockError",
    "BlockFetcher",
    "BlockNotFound",
    "BlockStore",
    "FlistError",
    "FlistReader",
    "FlistWriter",
    "FormatError",
    "HubError",
    "ImageError",
    "Inode",
    "MountError",
    "PackReport",
    "Route",
    "Router",
    "StoreError",
    "StoreUrlError",
    "TreeEntry",
    "UnpackReport",
    "UnsafeFlist",
    "check_tree",
    "decode_block",
    "encode_block",
    "image_entries",
    "mount",
    "open_store",
    "pack_directory",
    "pack_entries",
    "parse_route",
    "public_url",
    "unpack",
    "walk_directory",
]
