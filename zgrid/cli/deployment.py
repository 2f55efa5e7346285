"""`zgrid deployment`: check, hash and sign a deployment document before it goes to a node."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from zgrid.cli.ledger_options import check_ledger_url, ledger_client
from zgrid.cli.output import emit_json, out_console
from zgrid.cli.store_access import signing_identity
from zgrid.errors import ZgridError
from zgrid.identity import public_key_from_address

if TYPE_CHECKING:
    from zgrid.types import Deployment

app = typer.Typer(help="Check, hash and sign deployment documents.", no_args_is_help=True)

DeploymentFile = Annotated[Path, typer.Argument(help="Deployment JSON file.", dir_okay=False)]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]


def _read(path: Path) -> Deployment:
    from zgrid.types import InvalidDeployment, parse_deployment  # noqa: PLC0415  # the deployment models are heavy: load them on use

    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ZgridError(f"cannot read {path}: {exc.strerror or exc}") from exc
    try:
        return parse_deployment(raw)
    except InvalidDeployment as exc:
        # "$" is the document itself: say which file instead.
        shown = "; ".join(
            reason if field == "$" else f"{field}: {reason}" for field, reason in exc.problems
        )
        raise ZgridError(f"{path}: {shown}") from exc


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


def _ledger_keys(ctx: typer.Context, url: str, deployment: Deployment) -> dict[int, bytes]:
    """The key of every twin the signature requirement names, as the ledger has it now."""
    from zgrid.chain import NotFound  # noqa: PLC0415  # the ledger's package is heavy: load it on use

    keys: dict[int, bytes] = {}
    with ledger_client(ctx, url, sign=False) as client:
        for request in deployment.signature_requirement.requests:
            try:
                twin = client.twin(request.twin_id)
            except NotFound as exc:
                raise NotFound(
                    f"twin {request.twin_id}, named in the deployment's signature requirement, "
                    f"is not on the ledger at {url}"
                ) from exc
            keys[request.twin_id] = public_key_from_address(str(twin["account"]))
    return keys


def _given_on_command_line(ctx: typer.Context, name: str) -> bool:
    source = ctx.get_parameter_source(name)  # an enum of typer's own copy of click
    return source is not None and source.name == "COMMANDLINE"


@app.command()
def check(
    ctx: typer.Context,
    path: DeploymentFile,
    ledger: Annotated[
        str | None,
        typer.Option(
            "--ledger",
            envvar="ZGRID_LEDGER",
            metavar="URL",
            help="Verify the signatures against the signers' keys on this ledger.",
            show_default="not verified",
        ),
    ] = None,
    signer: Annotated[
        list[str] | None,
        typer.Option(
            "--signer",
            metavar="TWIN_ID=ADDRESS",
            help="Offline: verify against this key instead of the ledger's (repeat per signer).",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Validate a deployment; print its hash and capacity, and verify its signatures.

    With --ledger URL (or $ZGRID_LEDGER) every twin in the signature requirement is
    looked up on the ledger and each signature is checked against that twin's key, as
    the node will. --signer checks offline against keys you give instead.
    """
    from zgrid.types import compute_units, storage_units, verify_signatures  # noqa: PLC0415  # the deployment models are heavy: load them on use

    if signer and ledger is not None and _given_on_command_line(ctx, "ledger"):
        raise typer.BadParameter(
            "give either --ledger (the signers' keys on the ledger) or --signer (offline keys)",
            param_hint="--signer",
        )
    if ledger is not None and not signer:
        check_ledger_url(ledger)  # wrong usage comes before any work
    deployment = _read(path)
    capacity = deployment.capacity()
    requirement = deployment.signature_requirement
    signed_by = [signature.twin_id for signature in requirement.signatures]
    verified_against: str | None = None
    weight: int | None = None
    if signer:
        verified_against = "offline"
        weight = verify_signatures(deployment, _signer_keys(signer))
    elif ledger is not None:
        verified_against = "ledger"
        weight = verify_signatures(deployment, _ledger_keys(ctx, ledger, deployment))
    document = {
        "hash": deployment.hash_hex(),
        "version": deployment.version,
        "workloads": len(deployment.workloads),
        "capacity": capacity.to_dict(),
        "cu": str(compute_units(capacity)),
        "su": str(storage_units(capacity)),
        "signature_weight": weight,
        "weight_required": requirement.weight_required,
        "signed_by": signed_by,
        "verified_against": verified_against,
        "ledger": ledger if verified_against == "ledger" else None,
    }
    if as_json:
        emit_json(document)
        return
    out_console.print(f"valid deployment, {len(deployment.workloads)} workload(s)")
    out_console.print(f"hash: {document['hash']}")
    out_console.print(
        "capacity: " + ", ".join(f"{key}={value}" for key, value in capacity.to_dict().items())
    )
    twins = ", ".join(str(twin) for twin in signed_by) or "nobody"
    if verified_against == "ledger":
        out_console.print(
            f"signatures verified against the ledger at {ledger}: twin(s) {twins}, "
            f"weight {weight} of {requirement.weight_required} required"
        )
    elif verified_against == "offline":
        out_console.print(
            f"signatures verified OFFLINE against the --signer keys (not the ledger's): "
            f"twin(s) {twins}, weight {weight} of {requirement.weight_required} required"
        )
    else:
        out_console.print(
            f"signatures NOT verified (signed by {twins}): give --ledger URL or set $ZGRID_LEDGER"
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
    from zgrid.types import sign_deployment  # noqa: PLC0415  # the deployment models are heavy: load them on use

    deployment = _read(path)
    signed = sign_deployment(deployment, twin_id, signing_identity(ctx))
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
