"""The node daemon: turns the ledger's contracts for this node into running workloads,
restores them after any crash, and reports what it uses and what became of them."""

__all__: list[str] = []
