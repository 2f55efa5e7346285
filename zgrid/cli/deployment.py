"""`zgrid deployment`: check, hash and sign a deployment document before it goes to a node."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer

from zgrid.cli.context import settings
from zgrid.cli.output import emit_json, out_console
from zgrid.errors import ZgridError
from zgrid.identity import load_identity, public_key_from_address
from zgrid.types import (
    Deployment,
    InvalidDeployment,
    compute_units,
    parse_deployment,
    sign_deployment,
    storage_units,
    verify_signatures,
)

app = typer.Typer(help="Check, hash and sign deployment documents.", no_args_is_help=True)

DeploymentFile = Annotated[Path, typer.Argument(help="Deployment JSON file.", dir_okay=False)]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]


def _read(path: Path) -> Deployment:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InvalidDeployment.at("$", f"cannot read {path}: {exc.strerror or exc}") from exc
    return parse_deployment(raw)


def _signer_keys(signers: list[str]) -> dict[int, bytes]:
    keys: dict[int, bytes] = {}
    for item in signers:
        twin_text, sep, address = item.partition("=")
        if not sep or not twin_text.isdigit():
            raise typer.BadParameter(
                f"expected TWIN_ID=ADDRESS, got {item!r}", param_hint="--signer"
            )
        keys[int(twin_text)] = public_key_from_address(address)
    return keys


@app.command()
def check(
    path: DeploymentFile,
    signer: Annotated[
        list[str] | None,
        typer.Option(
            "--signer",
            help="TWIN_ID=ADDRESS of a signer; with any given, signatures are verified.",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Validate a deployment; print its hash, capacity and (optionally) signature weight."""
    deployment = _read(path)
    capacity = deployment.capacity()
    weight: int | None = None
    if signer:
        weight = verify_signatures(deployment, _signer_keys(signer))
    document = {
        "hash": deployment.hash_hex(),
        "version": deployment.version,
        "workloads": len(deployment.workloads),
        "capacity": capacity.to_dict(),
        "cu": str(compute_units(capacity)),
        "su": str(storage_units(capacity)),
        "signature_weight": weight,
    }
    if as_json:
        emit_json(document)
        return
    out_console.print(f"valid deployment, {len(deployment.workloads)} workload(s)")
    out_console.print(f"hash: {document['hash']}")
    out_console.print(
        "capacity: " + ", ".join(f"{key}={value}" for key, value in capacity.to_dict().items())
    )
    if weight is not None:
        out_console.print(
            f"signatures verified: weight {weight} of "
            f"{deployment.signature_requirement.weight_required} required"
        )


@app.command()
def sign(
    ctx: typer.Context,
    path: DeploymentFile,
    twin_id: Annotated[int, typer.Option("--twin-id", help="The twin this identity signs as.")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of in place.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Add this identity's signature to a deployment file."""
    deployment = _read(path)
    stored = load_identity(settings(ctx).home)
    signed = sign_deployment(deployment, twin_id, stored.identity)
    target = output or path
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        temporary.write_text(json.dumps(signed.to_json_dict(), indent=2) + "\n", encoding="utf-8")
        temporary.replace(target)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise ZgridError(f"cannot write {target}: {exc.strerror or exc}") from exc
    if as_json:
        emit_json({"hash": signed.hash_hex(), "twin_id": twin_id, "path": str(target)})
    else:
        out_console.print(f"signed {signed.hash_hex()} as twin {twin_id} -> {target}")
