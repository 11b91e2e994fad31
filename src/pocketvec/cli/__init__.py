"""The `pocketvec` command line: thin typer wrappers that parse and call library functions.

Each command group lives in its own module; heavy libraries are imported inside the commands so
that `pocketvec --help` stays fast.
"""

from __future__ import annotations

import sys
import warnings

import typer

from pocketvec.cli import (
    app_cmd,
    bench,
    data,
    data_sources,
    demo,
    eval_cmd,
    export,
    gallery,
    match,
    output,
    train,
    verify,
)
from pocketvec.errors import PocketvecError, PocketvecWarning
from pocketvec.extras import missing_extra
from pocketvec.version import __version__

app = typer.Typer(
    name="pocketvec",
    help="Train, export, verify and run small on-device image-recognition encoders.\n\n"
    "Example: pocketvec demo",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
data_sources.register(data.app)
app.add_typer(data.app, name="data")
app.add_typer(train.app, name="train")
app.add_typer(export.app, name="export")
app.add_typer(gallery.app, name="gallery")
app.add_typer(app_cmd.app, name="app")
app.command("verify")(verify.verify)
app.command("match")(match.match)
app.command("eval")(eval_cmd.eval_command)
app.command("calibrate")(eval_cmd.calibrate)
app.add_typer(bench.app, name="bench")
app.command("demo")(demo.demo)


def _version(value: bool) -> None:
    if value:
        print(f"pocketvec {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print results and errors only (no progress)."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Also show the messages of the libraries used "
                                 "(coremltools, converters' progress bars, warnings)."),
) -> None:
    """pocketvec: on-device image recognition, from training to the phone."""
    output.configure(quiet=quiet, verbose=verbose)


def _one_line_warnings() -> None:
    """pocketvec's own warnings print as one yellow line; others keep Python's format."""
    default = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        if issubclass(category, PocketvecWarning):
            output.err_console.print(f"[yellow]warning:[/] {output.safe(message)}", highlight=False)
        else:
            default(message, category, filename, lineno, file, line)

    warnings.showwarning = show


def _command(argv: list[str]) -> str | None:
    """The command a command line runs (its first word), for the missing-extra line."""
    words = [a for a in argv if not a.startswith("-")]
    return words[0] if words else None


def main() -> None:
    """Entry point: user errors become one red line and exit code 2, never a traceback. So does a package
    of an optional extra the install lacks: the line names the extra to install."""
    _one_line_warnings()
    try:
        with output.widen_when_logged():
            app()
    except PocketvecError as e:
        _fail(e)
    except ModuleNotFoundError as e:
        missing = missing_extra(e, _command(sys.argv[1:]))
        if missing is None:
            raise
        _fail(missing)


def _fail(error: PocketvecError) -> None:
    output.err_console.print(f"[bold red]error:[/] {output.safe(error)}", highlight=False)
    sys.exit(2)
