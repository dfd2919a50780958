"""The click application behind ``learnlaw``. Each command parses, calls the library, prints.

User mistakes (``UserError``, bad options, and files that cannot be read or written) become one
line on stderr and exit code 2, in ``main`` only; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import sys

import click

from learnlaw.cli.analyze import analyze
from learnlaw.cli.demo import demo
from learnlaw.cli.law import law
from learnlaw.cli.policy import policy
from learnlaw.cli.pretrain import pretrain_command
from learnlaw.cli.schedule import schedule
from learnlaw.cli.select import select_command
from learnlaw.errors import UserError


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="learnlaw")
@click.option(
    "--max-memory",
    default=None,
    metavar="SIZE",
    help="Refuse plans that would need more memory than this (e.g. 16G). "
    "Default: 80% of this machine's memory.",
)
def cli(max_memory) -> None:
    """Optimal data policies and loss-curve laws for language-model training."""
    from learnlaw.files import parse_bytes, set_memory_limit

    set_memory_limit(None if max_memory is None else parse_bytes(max_memory))


cli.add_command(law)
cli.add_command(schedule)
cli.add_command(policy)
cli.add_command(analyze)
cli.add_command(demo)
cli.add_command(select_command)
cli.add_command(pretrain_command)


def _fail(message: str) -> None:
    click.echo(f"learnlaw: error: {message}", err=True)
    sys.exit(2)


def run(argv: list[str] | None = None) -> None:
    """Run the CLI; user errors print one line and exit with code 2."""
    try:
        code = cli.main(args=argv, prog_name="learnlaw", standalone_mode=False)
    except UserError as exc:
        _fail(str(exc))
    except click.UsageError as exc:
        hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
        _fail(exc.format_message().replace("\n", " ") + hint)
    except click.ClickException as exc:
        _fail(exc.format_message())
    except OSError as exc:
        if exc.filename is None:  # not about a file the user named: keep the traceback
            raise
        _fail(f"{exc.filename}: {exc.strerror or exc}")
    except (click.Abort, KeyboardInterrupt):
        click.echo("learnlaw: interrupted", err=True)
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)
