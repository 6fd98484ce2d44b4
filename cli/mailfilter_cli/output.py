"""One output convention for every `mailfilter` command.

- `--format table|json|csv`: table for people; JSON Lines (one object a line) for
  streams of records, one object otherwise; CSV where the output is a table. A
  command offers the formats its output has (`format_option`).
- Nothing is cut when stdout is not a terminal: a table written to a pipe or a
  file is as wide as its widest cell, so ids and addresses can be copied into
  the next command. In a terminal, long cells fold onto more lines rather than
  end in an ellipsis.
- Prompts and progress go to stderr; stdout carries only the output.

rich is imported only when a table is printed.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, TextIO

import click

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

TABLE, JSON, CSV = "table", "json", "csv"
WIDE = 1_000_000  # the width of a console that is not a terminal: no line is ever cut or wrapped
MIN_FOLDED = 4  # in a terminal, the narrowest a folded column may get while others are kept whole
_WHOLE = "_mailfilter_whole"


def format_option(*formats: str, default: str = TABLE, json_alias: bool = False) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """`--format` with these choices, passed to the command as `output_format`.

    `json_alias` adds the hidden `--json` flag the command had before `--format`:
    scripts that pass it keep working.
    """
    formats = formats or (TABLE, JSON, CSV)
    help_text = {
        JSON: "JSON Lines, one object a line",
        TABLE: "for people",
        CSV: "one header line, then rows",
    }
    described = "; ".join(f"{name}: {help_text[name]}" for name in formats)

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(command)
        def run(*args: Any, output_format: str, json_flag: bool = False, **kwargs: Any) -> Any:
            return command(*args, output_format=JSON if json_flag else output_format, **kwargs)

        run = click.option(
            "--format",
            "output_format",
            type=click.Choice(formats),
            default=default,
            show_default=True,
            help=f"Output format ({described}).",
        )(run)
        if json_alias:
            run = click.option("--json", "json_flag", is_flag=True, hidden=True, help="Same as --format json.")(run)
        return run

    return decorate


def is_terminal(stream: TextIO | None = None) -> bool:
    stream = sys.stdout if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # a closed or unusual stream
        return False


def console(*, stderr: bool = False) -> Console:
    """A rich console for stdout (or stderr): the terminal's width in a terminal, unbounded otherwise."""
    from rich.console import Console  # noqa: PLC0415 - rich only when a table is printed

    if is_terminal(sys.stderr if stderr else sys.stdout):
        return Console(stderr=stderr)
    return Console(stderr=stderr, width=WIDE, soft_wrap=True)


def table(*columns: str, **options: Any) -> Table:
    """A rich table whose cells fold onto more lines rather than end in an ellipsis; the title is plain text, not markup."""
    from rich.table import Table  # noqa: PLC0415
    from rich.text import Text  # noqa: PLC0415

    if isinstance(options.get("title"), str):
        options["title"] = Text(options["title"], style="table.title")
    view = Table(**options)
    for column in columns:
        view.add_column(column, overflow="fold")
    return view


def fit(view: Table, rows: Iterable[Sequence[str]], keep_whole: Sequence[int] = ()) -> Table:
    """Add `rows` as plain text (never markup); the columns at the `keep_whole` indexes are kept whole by `print_table`."""
    from rich.text import Text  # noqa: PLC0415

    widths: dict[int, int] = dict.fromkeys(keep_whole, 0)
    for row in rows:
        view.add_row(*(Text(cell) for cell in row))
        for index in keep_whole:
            widths[index] = max(widths[index], *(len(line) for line in row[index].splitlines() or [""]))
    setattr(view, _WHOLE, widths)  # rich's Table has no field for it
    return view


def print_table(view: Table, out: Console | None = None) -> None:
    """Print a table from `fit`: in a terminal wide enough, its ids and addresses on one line each, other cells folded.

    Too narrow a terminal folds them too rather than crop columns off the right edge;
    a pipe or a file gets every cell whole on one line (`console`).
    """
    out = out or console()
    whole: dict[int, int] = getattr(view, _WHOLE, {})
    folded = len(view.columns) - len(whole)
    if whole and sum(whole.values()) + folded * MIN_FOLDED + 3 * len(view.columns) + 1 <= out.width:
        for index in whole:
            view.columns[index].no_wrap = True  # rich narrows the other columns first
    out.print(view)


def json_line(value: Any) -> None:
    """One JSON value on one line of stdout."""
    click.echo(json.dumps(value, ensure_ascii=False, default=str))


def csv_rows(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """A header line (unless `header` is empty: more rows of the same CSV) and the rows, as CSV on stdout.

    Lists inside a cell are joined by spaces.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    if header:
        writer.writerow(header)
        click.echo(buffer.getvalue(), nl=False)
    for row in rows:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow([cell_text(cell) for cell in row])
        click.echo(buffer.getvalue(), nl=False)


def cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | tuple | set | frozenset):
        return " ".join(str(v) for v in value)
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)
