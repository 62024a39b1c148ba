"""The command line: a thin typer layer over :mod:`planner.api` (the only place importing typer)."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

DISTRIBUTION = "planner-disagg"
"""This project's distribution name on PyPI (the import package and the command are ``planner``)."""


def foreign_planner() -> str | None:
    """Why ``import planner`` is not this project's package (another distribution named ``planner``
    installed over it or ahead of it on sys.path), or None. Cheap: no metadata lookup."""
    here = Path(__file__).resolve().parent.parent
    planner = sys.modules["planner"]  # imported already: the package of this module (whichever file it came from)
    where = getattr(planner, "__file__", None)
    if where is None or Path(where).resolve().parent != here:
        return f"`import planner` resolves to {where or 'a namespace package'}, not to {here}"
    if getattr(planner, "__distribution__", None) != DISTRIBUTION:
        return f"{where} is not {DISTRIBUTION}'s (another distribution named planner was installed over it)"
    return None


def _refuse_foreign(why: str) -> int:
    sys.stderr.write(f"error: {why}\n")
    sys.stderr.write(
        "hint: the PyPI project 'planner' is unrelated to this one; reinstall it: "
        f"pip uninstall -y planner && pip install {DISTRIBUTION}\n"
    )
    return 2


_FOREIGN = foreign_planner()
if _FOREIGN is not None:  # pragma: no cover - checked before the imports below, which need this project's modules
    if Path(sys.argv[0]).name in ("planner", "planner.exe", "__main__.py"):
        raise SystemExit(_refuse_foreign(_FOREIGN))
    raise ImportError(f"planner.cli: {_FOREIGN}; pip install {DISTRIBUTION}")

import typer  # noqa: E402

from planner.cli import (  # noqa: E402
    calibrate_cmd,
    catalog_cmd,
    check_cmd,
    estimate_cmd,
    profile_cmd,
    report_cmd,
    schema_cmd,
    simulate_cmd,
    size_cmd,
    study_cmd,
    sweep_cmd,
    trace_cmd,
)
from planner.cli._common import colour_ok, reset_run_state, result_emitted  # noqa: E402
from planner.errors import ExitCode, InputError, PlannerError  # noqa: E402
from planner.io.output import recording_inputs, terminate_as_interrupt  # noqa: E402
from planner.io.sources import reading_once  # noqa: E402

app = typer.Typer(
    name="planner",
    help="Capacity planning and cost optimization for disaggregated LLM inference.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        sys.stdout.write(f"planner {getattr(sys.modules['planner'], '__version__', '?')}\n")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", help="Print planner's version and exit.", is_eager=True, callback=_version),
) -> None:
    """Capacity planning and cost optimization for disaggregated LLM inference."""


app.add_typer(catalog_cmd.app, name="catalog")
app.add_typer(estimate_cmd.app, name="estimate")
app.add_typer(calibrate_cmd.app, name="calibrate")
app.command("size")(size_cmd.size)
app.command("simulate")(simulate_cmd.simulate)
app.command("schema")(schema_cmd.schema)
app.command("profile")(profile_cmd.profile)
app.add_typer(trace_cmd.app, name="trace")
app.command("check")(check_cmd.check)
app.command("sweep")(sweep_cmd.sweep)
app.add_typer(study_cmd.app, name="study")
app.command("report")(report_cmd.report)


def _err(line: str) -> None:
    if colour_ok(sys.stderr):  # red on a terminal (never under NO_COLOR)
        head, sep, rest = line.partition(": ")
        if sep and head in ("error", "hint"):
            line = f"\x1b[{'31' if head == 'error' else '2'}m{head}:\x1b[0m {rest}"
    sys.stderr.write(line + "\n")


# ------------------------------------------------------------------- what the argument vector says

_OUTPUT_FLAGS = {"-o": "-o", "--output": "-o", "--html": "--html", "--junit": "--junit"}


def _option_values(args: list[str], names: dict[str, str]) -> list[tuple[str, str]]:
    """``(flag, value)`` of each option of ``names`` in ``args`` (``--flag V``, ``--flag=V``, ``-oV``), up to ``--``."""
    found: list[tuple[str, str]] = []
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--":
            break
        if a in names and i + 1 < len(args):
            found.append((names[a], args[i + 1]))
            i += 2
            continue
        head, eq, value = a.partition("=")
        if eq and head in names and head.startswith("--"):
            found.append((names[head], value))
        else:
            for short in (n for n in names if len(n) == 2 and n.startswith("-")):
                if a.startswith(short) and len(a) > 2 and not a.startswith("--"):
                    found.append((names[short], a[2:]))
        i += 1
    return found


def json_mode(args: list[str]) -> bool:
    """Whether the command line asks for ``-f json`` / ``--format json`` (the last one given wins)."""
    values = _option_values(args, {"-f": "-f", "--format": "-f"})
    return bool(values) and values[-1][1].strip().lower() == "json"


def command_name(args: list[str]) -> str:
    """The command's words (``size``, ``estimate serve``) as the envelope's ``command`` names them."""
    import typer.main

    node: object = typer.main.get_command(app)
    words: list[str] = []
    for a in args:
        subs = getattr(node, "commands", None)
        if a.startswith("-"):
            continue
        if not subs or a not in subs:
            break
        words.append(a)
        node = subs[a]
    return " ".join(words) or "planner"


def check_distinct_outputs(args: list[str]) -> None:
    """Refuse (one InputError, before anything runs) two outputs of one run that name the same file:
    ``-o same --html same``, ``check -o j.xml --junit j.xml``."""
    seen: dict[Path, str] = {}
    for flag, value in _option_values(args, _OUTPUT_FLAGS):
        if not value or value == "-":
            continue
        try:
            target = Path(value).resolve()
        except (OSError, ValueError, RuntimeError):
            continue
        other = seen.get(target)
        if other is not None and other != flag:
            raise InputError(
                f"{flag} {value}: the same file as {other}; one output would overwrite the other",
                hint="give each output its own file",
            )
        seen.setdefault(target, flag)


# Commands whose -o/--output is a file they make (a trace, a workload, an overlay), not where their result goes.
_O_IS_NOT_THE_RESULT = frozenset({"trace synth", "profile", "catalog import-model", "calibrate run"})


def _error_envelope(args: list[str], message: str, hint: str | None, code: int) -> None:
    """With ``-f json``, an error also prints the envelope (status ``error``) on stdout, unless a result went
    out already, or ``-o`` sent the result to a file (stdout stays empty; the file is not touched)."""
    if result_emitted() or not json_mode(args):
        return
    from planner.report.envelope import envelope, to_json

    try:
        name = command_name(args)
    except Exception:  # the envelope must not turn an error into a crash
        name = "planner"
    if name not in _O_IS_NOT_THE_RESULT and _option_values(args, {"-o": "-o", "--output": "-o"}):
        return
    doc = envelope(name, "error", {}, {})
    doc["error"] = {"message": message, "hint": hint, "exit_code": int(code)}
    with contextlib.suppress(OSError, ValueError, AttributeError):
        sys.stdout.write(to_json(doc))
        sys.stdout.flush()


def _ascii_safe_streams() -> None:
    """An ASCII-only stdout or stderr (PYTHONIOENCODING=ascii, LANG=C) replaces what it cannot encode
    instead of failing with UnicodeEncodeError (tables get ASCII boxes: see render_rich)."""
    for stream in (sys.stdout, sys.stderr):
        encoding = str(getattr(stream, "encoding", None) or "utf-8").lower().replace("_", "-")
        reconfigure = getattr(stream, "reconfigure", None)
        if not encoding.startswith("utf") and reconfigure is not None:
            with contextlib.suppress(OSError, ValueError, TypeError):
                reconfigure(errors="replace")


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; map every outcome to an exit code (README: exit codes)."""
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    args = [a for a in (argv if argv is not None else sys.argv[1:]) if a != "--debug"]
    reset_run_state()
    _ascii_safe_streams()
    foreign = foreign_planner()
    if foreign is not None:
        return _refuse_foreign(foreign)
    try:
        check_distinct_outputs(args)
        # no output of the command may replace a file it read; each file is read from disk once; SIGTERM and
        # SIGHUP clean up as Ctrl-C does (no temporary file left)
        with terminate_as_interrupt(), recording_inputs(), reading_once():
            result = app(args=args, prog_name="planner", standalone_mode=False)
        code = int(result) if isinstance(result, int) else 0
        if code == ExitCode.INTERRUPTED:  # typer turns Ctrl-C into a silent Exit(130)
            _err("error: interrupted")
        return code
    except PlannerError as exc:
        if debug:
            raise
        _err(f"error: {exc.message}")
        if exc.hint:
            _err(f"hint: {exc.hint}")
        _error_envelope(args, exc.message, exc.hint, int(exc.exit_code))
        return int(exc.exit_code)
    except typer.Exit as exc:
        return int(exc.exit_code)
    except typer.Abort:
        _err("error: interrupted")
        return int(ExitCode.INTERRUPTED)
    except KeyboardInterrupt:
        _err("error: interrupted")
        return int(ExitCode.INTERRUPTED)
    except BrokenPipeError:
        return int(ExitCode.OK)
    except Exception as exc:
        # Usage errors of typer's (vendored) click: they carry format_message() and exit_code 2.
        if hasattr(exc, "format_message") and getattr(exc, "exit_code", None) == ExitCode.USAGE:
            ctx = getattr(exc, "ctx", None)
            where = f" ({ctx.command_path})" if ctx is not None else ""
            message = f"{exc.format_message()}{where}"
            _err(f"error: {message}")
            _err("hint: add --help for usage")
            _error_envelope(args, message, "add --help for usage", int(ExitCode.USAGE))
            return int(ExitCode.USAGE)
        return _internal(exc, debug, args)


def _internal(exc: Exception, debug: bool, args: list[str] | None = None) -> int:
    """A bug: say so, with no traceback unless --debug."""
    if debug:
        raise exc
    message = f"internal error ({type(exc).__name__}: {exc}); please report it, and rerun with --debug for a traceback"
    _err(f"error: {message}")
    _error_envelope(args or [], message, None, int(ExitCode.INTERNAL))
    return int(ExitCode.INTERNAL)


__all__ = ["DISTRIBUTION", "app", "check_distinct_outputs", "command_name", "foreign_planner", "json_mode", "main"]
