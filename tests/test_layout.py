"""The package layout rules: pinned public faces and who may import whom.

(The order of each ``__all__`` is ruff's RUF022 sort, checked by `make lint`.)
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import zgrid.chain
import zgrid.client
import zgrid.explorer
import zgrid.flist
import zgrid.identity
import zgrid.node
import zgrid.types
import zgrid.web
import zgrid.zdb

ROOT = Path(zgrid.__file__).parent

PUBLIC = {
    zgrid.flist: [
        "BLOCK_SIZE", "Block", "BlockError", "BlockFetcher", "BlockNotFound", "BlockStore",
        "FlistError", "FlistReader", "FlistWriter", "FormatError", "HubError", "ImageError", "Inode",
        "MountError", "PackReport", "Route", "Router", "StoreError", "StoreUrlError", "TreeEntry", "UnpackReport",
        "UnsafeFlist", "check_tree", "decode_block", "encode_block", "image_entries", "mount",
        "open_store", "pack_directory", "pack_entries", "parse_route", "public_url", "unpack",
        "walk_directory",
    ],
    zgrid.client: [
        "DEFAULT_TIMEOUT", "ClientError", "ContractChange", "CurrentContract", "DeployFailed",
        "DeploymentExists", "DeploymentNotFound", "DeploymentSummary", "DeploymentView", "DiskSpec",
        "ExplorerNodeSource", "ExplorerUnavailable", "FlistNotFound", "Grid", "InvalidAnswer", "InvalidWorkload", "LedgerNodeSource",
        "MachineSpec", "MountSpec", "NetworkConfig", "NetworkNotConfigured", "NetworkSpec", "NodeOffer",
        "NodeSource", "Notice", "PlacementError", "PlacementRules", "Plan", "PolicyPrices",
        "PriceTerms", "Spec", "SpecError", "SpecProblem", "SpecSummary", "Store", "StoreError",
        "StoreLocked", "SyncGrid", "Unlocker", "WorkloadChange", "WorkloadProgress", "WorkloadView",
        "WrongPassphrase", "ZdbSpec", "contract_price", "decimal_text", "format_size", "load_spec",
        "parse_size", "parse_spec", "place", "plan_changes", "price_terms", "resolve_flists",
        "spec_schema", "spec_schema_text", "spec_summary", "to_tokens",
    ],
    zgrid.explorer: [
        "BadQuery", "ExplorerError", "ExplorerSettings", "ExplorerStore", "ExplorerStoreError",
        "ExplorerView", "Indexer", "IndexerStatus", "LedgerMismatch", "NotIndexed", "Position",
        "UntrustedBlock", "create_app", "database_url", "index_once", "serve",
    ],
    zgrid.zdb: [
        "DEFAULT_NAMESPACE", "MODE_SEQ", "MODE_USER", "ClientError", "CommandError", "ConnectionLost",
        "ProtocolError", "ServerOptions", "StorageError", "Store", "ZdbClient", "ZdbError", "crc32c",
        "parse_size", "run_server",
    ],
    zgrid.chain: [
        "CERTIFIED_MARKUP", "DISCOUNT_TIERS", "HOURS_PER_MONTH",
        "UNITS_PER_TOKEN", "ChainClient", "ChainError", "ChainEvent", "ChainStorageError", "Genesis",
        "GenesisError", "Interface", "JoinToken", "Ledger", "LedgerUnavailable", "Location", "NotFound",
        "PublicConfig", "RejectCode", "SignedHeader",
        "SignedTransaction", "SyncChainClient", "TransactionBody", "TransactionRejected", "TxStatus",
        "VerificationFailed", "VerifyReport", "check_events", "check_header", "create_app", "discount_percent", "format_tokens",
        "init_dev_chain", "issue_join_token", "load_genesis", "node_contract_hourly",
        "parse_listen", "parse_tokens", "rent_contract_hourly", "serve", "sign_transaction",
        "split_payment", "tokens_for", "traffic_usd", "verify_chain",
    ],
    zgrid.identity: [
        "PUBLIC_KEY_SIZE", "SIGNATURE_SIZE", "CanonicalJSONError", "Identity", "IdentityError",
        "InvalidKeyError", "KeyStoreError", "MnemonicError", "StoredIdentity", "UnsealError",
        "address_of", "blake2b256", "canonical_dumps", "canonical_loads", "ed25519_seed_from_mnemonic",
        "identity_path", "load_identity", "new_mnemonic", "new_wireguard_key", "normalize_mnemonic",
        "public_key_from_address", "save_identity", "seal", "verify", "wireguard_public_key",
    ],
    zgrid.types: [
        "GIB", "INSTALL_ORDER", "MIB", "MIN_MEMORY", "NODE_INTERFACE", "RESERVED_NETWORK_NAMES", "ZDB",
        "Capacity", "ComputeCapacity", "Deployment", "GatewayFQDNProxy", "GatewayFQDNProxyWorkload",
        "GatewayNameProxy", "GatewayNameProxyWorkload", "IPWorkload", "InvalidDeployment",
        "MachineInterface", "MachineNetwork", "Mount", "Network", "NetworkWorkload", "Peer", "PublicIP",
        "ResultState", "Signature", "SignatureRequest", "SignatureRequirement", "SignaturesInsufficient", "Signer",
        "TypesError", "UpdatePlan", "UpdateRefused", "Volume",
        "VolumeWorkload", "Workload", "WorkloadData", "WorkloadResult", "WorkloadType", "ZDBWorkload",
        "ZMachine", "ZMachineWorkload", "ZMount", "ZMountWorkload", "compute_units", "decimal_text", "farming_units",
        "make_workload", "min_root_size", "parse_deployment", "same_workload", "sign_deployment", "storage_units",
        "validate_update", "verify_signatures", "workload_id",
    ],
    zgrid.node: [
        "CapacityExceeded", "NetworkFailure", "NodeConfig", "NodeConfigError", "NodeError",
        "ProvisionError", "PurgeReport", "ResultReport", "RuntimeFailure", "SystemCommandError",
        "WorkloadReport", "Yggdrasil", "clear_under", "follow_logs", "links", "load_or_create_node_identity",
        "node_scope", "node_status", "open_results", "public_settings", "purge_node", "run_node",
        "seal_deployment",
        "seal_results", "unique_name", "unseal_deployment",
    ],
    zgrid.web: [
        "BODY_IDLE_TIMEOUT", "AppServer", "ConnectionLimits", "ErrorBody", "ErrorDetail", "RequestRefused",
        "ServeError", "WebError", "bind_socket", "document_errors", "error_body", "error_response",
        "error_responses", "install_error_handlers", "iter_body", "listen_address", "read_body",
        "validation_message",
    ],
}  # fmt: skip


@pytest.mark.parametrize("package", list(PUBLIC), ids=lambda p: p.__name__)
def test_public_face_is_pinned(package: object) -> None:
    exported = list(getattr(package, "__all__"))  # noqa: B009
    assert exported == PUBLIC[package]  # type: ignore[index]
    for name in exported:
        assert hasattr(package, name), name


def _zgrid_imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("zgrid"):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("zgrid"))
    return found


# The root modules every package may use; everything else of zgrid is a package.
ROOT_MODULES = {
    "zgrid",
    "zgrid.errors",
    "zgrid.canonical",
    "zgrid.signatures",
    "zgrid.atomic",
    "zgrid.lazy",
    "zgrid.blocking",
    "zgrid.syncgen",
}


@pytest.mark.parametrize("package", ["identity", "types"])
def test_foundation_packages_import_nothing_else_of_zgrid(package: str) -> None:
    for path in (ROOT / package).rglob("*.py"):
        for module in _zgrid_imports(path):
            allowed = module in ROOT_MODULES or module.startswith(f"zgrid.{package}")
            assert allowed, f"{path.relative_to(ROOT)} imports {module}"


def test_chain_never_imports_node_client_or_explorer() -> None:
    for path in (ROOT / "chain").rglob("*.py"):
        for module in _zgrid_imports(path):
            assert module.split(".")[1:2] not in (["node"], ["client"], ["explorer"]), (
                f"{path} imports {module}"
            )


def test_packages_use_each_other_only_through_their_public_face() -> None:
    for path in ROOT.rglob("*.py"):
        own = path.relative_to(ROOT).parts[0]
        for module in _zgrid_imports(path):
            parts = module.split(".")
            if len(parts) > 2 and parts[1] != own and module not in ROOT_MODULES:
                pytest.fail(f"{path.relative_to(ROOT)} reaches into {module}")


def test_every_package_has_a_docstring() -> None:
    for init in ROOT.rglob("__init__.py"):
        assert ast.get_docstring(ast.parse(init.read_text())), f"{init} has no module docstring"
