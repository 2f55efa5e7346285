"""Fixtures of the client's tests: the node tests' hosts on a bridge, for a whole grid."""

from tests.node.conftest import host_network

__all__ = ["host_network"]
