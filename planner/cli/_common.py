"""Options shared by every command, and output helpers."""

from __future__ import annotations

import contextlib
import csv
import io
import math
import os
import re
import sys
from collections.abc import Callable, Iterator
from enum import StrEnum
from pathlib import Path
from typing import IO, Annotated, Any

import typer
from rich.console import Console, Group, RenderableType
from rich.text import Text

from planner.io.output import emit, yaml_text
from planner.report.envelope import to_json


class Format(StrEnum):
    table = "table"
    json = "json"
    yaml = "yaml"
    csv = "csv"
    markdown = "markdown"


CatalogDirOpt = Annotated[
    list[Path] | None,
    typer.Option(
        "--catalog-dir",
        help="Extra catalog directory (extends or overrides the built-in catalogs; repeatable).",
        envvar=None,
        file_okay=False,
    ),
]
ENGINE_HELP = "Serving engine profile (vllm, sglang, trtllm, pytorch, splitwise; default vllm); NAME@VERSION pins the release."
EngineOpt = Annotated[str | None, typer.Option("--engine", help=ENGINE_HELP, metavar="NAME[@VERSION]")]
SizeEngineOpt = Annotated[
    str | None,
    typer.Option(
        "--engine",
        help=ENGINE_HELP[:-1] + "; 'auto' or a comma list (vllm,sglang,trtllm) sizes under each and reports the cheapest "
        "plan with every engine's cost (auto: every engine but the reference profiles pytorch and splitwise).",
        metavar="NAME[@VERSION]|auto|LIST",
    ),
]
FormatOpt = Annotated[Format, typer.Option("--format", "-f", help="Output format.", case_sensitive=False)]
OutputOpt = Annotated[
    Path | None,
    typer.Option("--output", "-o", help="Write the result to this file (atomically) instead of stdout.", dir_okay=False),
]

# ------------------------------------------------------------------------------------- the terminal

PIPE_WIDTH = 110
"""Table width when stdout is piped or the result goes to a file (fixed, so the bytes never depend on a terminal)."""
MIN_TTY_WIDTH = 60


class _Buffer(io.StringIO):
    """A string buffer that tells rich the encoding of the stream the text goes to (ASCII boxes for an ASCII stdout)."""

    def __init__(self, encoding: str) -> None:
        super().__init__()
        self._encoding = encoding

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return self._encoding


def is_tty(stream: IO[str] | Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def no_color() -> bool:
    """NO_COLOR (https://no-color.org): any non-empty value turns colour off."""
    return bool(os.environ.get("NO_COLOR"))


def colour_ok(stream: IO[str] | Any) -> bool:
    """Colour only on a terminal, and never under NO_COLOR or TERM=dumb."""
    return is_tty(stream) and not no_color() and os.environ.get("TERM") != "dumb"


def terminal_width(stream: IO[str] | Any) -> int:
    """The width tables get on ``stream``: the terminal's (``COLUMNS`` first; at least 60) on a TTY, else 110."""
    if not is_tty(stream):
        return PIPE_WIDTH
    width = 0
    columns = os.environ.get("COLUMNS", "").strip()
    if columns.isdigit():
        width = int(columns)
    if width <= 0:
        try:
            width = os.get_terminal_size(stream.fileno()).columns
        except (AttributeError, ValueError, OSError, io.UnsupportedOperation):
            width = 80
    return max(MIN_TTY_WIDTH, width)


def stream_encoding(stream: IO[str] | Any) -> str:
    return str(getattr(stream, "encoding", None) or "utf-8")


def render_rich(renderable: RenderableType, width: int = PIPE_WIDTH, *, stream: IO[str] | Any = None) -> str:
    """Lay out a rich renderable as text: 110 columns and no escape codes, unless ``stream`` (where the text
    will be written) is a terminal, which gets its own width and colour (NO_COLOR honoured). An ASCII-only
    ``stream`` gets ASCII boxes."""
    tty = stream is not None and is_tty(stream)
    buf = _Buffer(stream_encoding(stream) if stream is not None else "utf-8")
    if tty:
        console = Console(
            file=buf,
            width=terminal_width(stream),
            force_terminal=True,
            color_system="auto" if colour_ok(stream) else None,
            no_color=no_color(),
            highlight=False,
            emoji=False,
        )
    else:
        console = Console(file=buf, width=width, no_color=True, color_system=None, highlight=False, emoji=False)
    console.print(renderable)
    return buf.getvalue()


def with_line(table: RenderableType | str, line: str) -> RenderableType | str:
    """A table (rich renderable or laid-out text) with one plain line above it (``engine: ...``)."""
    if isinstance(table, str):
        return f"{line}\n{table}"
    return Group(Text(line), table)


# Warnings printed on stderr by this run (so that output_document prints each one once).
_warned: set[str] = set()
# Whether a result went out (stdout or -o) in this run: then an error does not print a JSON envelope too.
_emitted: list[bool] = [False]


def reset_run_state() -> None:
    """Forget the warnings printed and the results emitted (the CLI calls it once per run)."""
    _warned.clear()
    _emitted[0] = False


def result_emitted() -> bool:
    return _emitted[0]


class _ErrConsole(Console):
    """stderr's console: remembers the ``warning: ...`` lines it printed."""

    def print(self, *objects: Any, **kwargs: Any) -> None:
        for obj in objects:
            if isinstance(obj, str) and obj.startswith("warning: "):
                _warned.add(obj[len("warning: ") :])
        super().print(*objects, **kwargs)


def err_console() -> Console:
    return _ErrConsole(stderr=True, highlight=False, emoji=False, soft_wrap=True)


def warn(message: str) -> None:
    """One ``warning: ...`` line on stderr (yellow on a terminal), once per run."""
    if message in _warned:
        return
    _warned.add(message)
    line = f"warning: {message}"
    if colour_ok(sys.stderr):
        line = f"\x1b[33mwarning:\x1b[0m {message}"
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def warn_all(warnings: Any) -> None:
    """:func:`warn` each warning of an envelope (those not printed already)."""
    if isinstance(warnings, (list, tuple)):
        for w in warnings:
            warn(str(w))


def emit_result(text: str, output: Path | None, *, inputs: tuple[Path, ...] = ()) -> None:
    """:func:`planner.io.output.emit`, remembering that this run produced its result."""
    emit(text, output, inputs=inputs)
    _emitted[0] = True


# ------------------------------------------------------------------------------------------- CSV


def flat_rows(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dict → one flat row with dotted keys (CSV of a single result)."""
    row: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            row.update(flat_rows(value, f"{name}."))
        elif isinstance(value, list):
            continue
        else:
            row[name] = value
    return row


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def money_column(name: str) -> bool:
    """A money column of a CSV: its name matches ``*_usd*`` (``unit_usd``, ``extended_usd``,
    ``best_colocated_usd_per_month``), rounded to cents."""
    return "_usd" in name


def csv_cell(column: str, value: Any) -> Any:
    """One CSV cell as planner writes it: None empty; money to cents; a text cell that a spreadsheet would
    read as a formula (leading ``= + - @``, tab or CR) prefixed with ``'`` (a negative number is left alone)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        if money_column(column) and math.isfinite(value):
            return f"{value:.2f}"
        return value
    text = str(value)
    if text.startswith(_FORMULA_START) and text not in ("-", "+") and not _NUMBER.fullmatch(text):
        return "'" + text
    return text


def to_csv(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    columns: list[str] = []
    for row in rows:
        for key in row:
            if key not in columns:
                columns.append(key)
    names = [str(csv_cell("", c)) for c in columns]
    writer = csv.DictWriter(buf, fieldnames=names, lineterminator="\n")
    # Python's csv leaves a lone CR unquoted (a reader then splits the row there): such a row is quoted whole
    quoted = csv.DictWriter(buf, fieldnames=names, lineterminator="\n", quoting=csv.QUOTE_ALL)
    writer.writeheader()
    for row in rows:
        cells = {str(csv_cell("", k)): csv_cell(k, v) for k, v in row.items()}
        (quoted if any(isinstance(v, str) and "\r" in v for v in cells.values()) else writer).writerow(cells)
    return buf.getvalue()


# ------------------------------------------------------------------------------------------ output


def output_document(
    doc: dict[str, Any],
    fmt: Format,
    output: Path | None,
    table: RenderableType | str | None = None,
    markdown: str | None = None,
    csv_rows: list[dict[str, Any]] | None = None,
    inputs: tuple[Path, ...] = (),
) -> None:
    if fmt is Format.json:
        text = to_json(doc)
    elif fmt is Format.yaml:
        text = yaml_text(doc)
    elif fmt is Format.csv:
        text = to_csv(csv_rows if csv_rows is not None else [flat_rows(doc["data"])])
    elif fmt is Format.markdown:
        text = markdown if markdown is not None else "```\n" + to_json(doc) + "```\n"
    else:
        # a str is already laid out (and must not be read as rich markup)
        stream = sys.stdout if output is None else None
        text = to_json(doc) if table is None else table if isinstance(table, str) else render_rich(table, stream=stream)
    emit_result(text, output, inputs=inputs)
    warn_all(doc.get("warnings"))  # on stderr in every format (the JSON also carries them), each once; after the
    # write, so that a refused output is one error line


# ------------------------------------------------------------------------------------------------ progress

ProgressFn = Callable[[int, int], None]
"""A study's progress: ``progress(done, total)`` on stderr, a rich bar when stderr is a terminal."""


@contextlib.contextmanager
def study_progress(label: str = "points") -> Iterator[ProgressFn | None]:
    """``progress(done, total)`` for :func:`planner.api.executor.execute`, or None when stderr is not a terminal
    (or ``TERM=dumb``). The bar appears at the first call and is removed when the block ends, however it ends (an
    error or Ctrl-C prints its message on a clean line)."""
    if not is_tty(sys.stderr) or os.environ.get("TERM") == "dumb":
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    console = Console(stderr=True, highlight=False, emoji=False, no_color=bool(os.environ.get("NO_COLOR")))
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("left"),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    )
    task: list[TaskID] = []

    def update(done: int, total: int) -> None:
        if not task:
            bar.start()
            task.append(bar.add_task(label, total=total, completed=done))
        bar.update(task[0], completed=done, total=total)

    try:
        yield update
    finally:
        if task:
            bar.stop()
