"""The ledger: signed transactions, blocks, the registry of twins/farms/nodes, contracts, balances.

A validator (:class:`Ledger`) applies transactions through one state machine,
seals signed, hash-linked blocks into SQLite, and serves them over HTTP with an
event stream; everybody else talks to it through :class:`ChainClient`.
"""
