"""`zgrid spec`: check a spec file (every problem with its line and column), print its schema."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from zgrid.cli.output import emit_json, err_console, out_console

app = typer.Typer(help="Check deployment spec files.", no_args_is_help=True)

EXIT_INVALID = 1


@app.command()
def check(
    path: Annotated[Path, typer.Argument(help="The spec file (YAML).", metavar="FILE")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Check a spec file: a summary when it is valid, else every problem as FILE:LINE:COL."""
    from zgrid.client import SpecError, load_spec, spec_summary  # noqa: PLC0415  # the spec checker loads YAML and JSON Schema: only on use

    try:
        spec = load_spec(path)
    except SpecError as exc:
        if as_json:
            problems = [
                {"line": p.line, "column": p.column, "path": p.path, "message": p.message}
                for p in exc.problems
            ]
            emit_json({"valid": False, "problems": problems, "summary": None})
        else:
            for problem in exc.problems:
                where = f"{problem.path}: " if problem.path else ""
                err_console.print(
                    f"{path}:{problem.line}:{problem.column}: {where}{problem.message}"
                )
        raise typer.Exit(EXIT_INVALID) from exc
    summary = spec_summary(spec)
    if as_json:
        emit_json({"valid": True, "problems": [], "summary": summary.to_dict()})
    else:
        out_console.print(f"valid spec {summary}")


@app.command()
def schema() -> None:
    """Print the spec files' JSON Schema (Draft 2020-12), e.g. for an editor."""
    from zgrid.client import spec_schema_text  # noqa: PLC0415  # see check

    sys.stdout.write(spec_schema_text())
    sys.stdout.flush()
