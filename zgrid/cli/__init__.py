"""The `zgrid` command: a thin layer over the packages, one sub-command group per component.

Exit codes scripts can rely on: 0 success, 1 a zgrid error (one line on stderr; a failed
deploy rolled back), 2 wrong usage, 3 a failed deploy that could not undo all it made
(`zgrid destroy` cleans up), 130 interrupted.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
import typer.main

from zgrid import __version__
from zgrid.cli import (
    account,
    chain,
    contract,
    deploy,
    deployment,
    devnet,
    explorer,
    farm,
    flist,
    hub,
    identity,
    network,
    node,
    nodes,
    spec,
    twin,
    zdb,
)
from zgrid.cli.context import CliSettings
from zgrid.cli.output import err_console, one_line
from zgrid.errors import ZgridError

__all__ = ["EXIT_ERROR", "EXIT_INTERRUPTED", "EXIT_LEFT_BEHIND", "EXIT_USAGE", "app", "main", "run"]

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_LEFT_BEHIND = 3
EXIT_INTERRUPTED = 130

app = typer.Typer(
    name="zgrid",
    help="zgrid: a decentralized cloud commanded only through its ledger.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
app.add_typer(identity.app, name="identity")
app.add_typer(network.app, name="network")
app.add_typer(deployment.app, name="deployment")
app.add_typer(chain.app, name="chain")
app.add_typer(account.app, name="account")
app.add_typer(twin.app, name="twin")
app.add_typer(farm.app, name="farm")
app.add_typer(contract.app, name="contract")
app.add_typer(zdb.app, name="zdb")
app.add_typer(flist.app, name="flist")
app.add_typer(hub.app, name="hub")
app.add_typer(node.app, name="node")
app.add_typer(spec.app, name="spec")
app.add_typer(devnet.app, name="devnet")
app.add_typer(explorer.app, name="explorer")
deploy.register(app)
nodes.register(app)


def _version(value: bool) -> None:
    if value:
        print(f"zgrid {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    home: Annotated[
        Path,
        typer.Option(
            "--home",
            envvar="ZGRID_HOME",
            help="Where identities and settings live.",
            show_default="~/.zgrid",
        ),
    ] = Path("~/.zgrid"),
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    ctx.obj = CliSettings(home=home.expanduser())


def main(argv: list[str] | None = None) -> int:
    """Run the command line; errors become one line on stderr and an exit code."""
    try:
        command = typer.main.get_command(app)
        # Not standalone: click would print "Aborted!" and exit 1 on Ctrl-C at a prompt.
        result = command.main(args=argv, prog_name="zgrid", standalone_mode=False)
    except ZgridError as exc:
        err_console.print(f"error: {one_line(str(exc))}")
        # A deploy that failed and could not undo all it made says so in its code too.
        return EXIT_LEFT_BEHIND if getattr(exc, "rolled_back", True) is False else EXIT_ERROR
    except typer.TyperException as exc:  # click's errors: wrong usage (2), a bad file (1)
        if exc.exit_code == EXIT_USAGE:
            exc.show()  # type: ignore[attr-defined]  # every usage error can show its usage
            return EXIT_USAGE
        err_console.print(f"error: {one_line(exc.format_message())}")
        return exc.exit_code if isinstance(exc.exit_code, int) else EXIT_ERROR
    except typer.Abort as exc:  # a prompt saw Ctrl-C or the end of its input
        if isinstance(exc.__context__, KeyboardInterrupt):
            return EXIT_INTERRUPTED
        err_console.print("error: no input (the end of standard input came first)")
        return EXIT_ERROR
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except SystemExit as exc:  # typer's own exits (a closed stdout, shell completion)
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else EXIT_ERROR)
    # An explicit exit (``--help``, ``typer.Exit``) returns its code; a command returns None.
    return result if isinstance(result, int) else 0


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
