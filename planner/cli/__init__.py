"""The command line: a thin typer layer over :mod:`planner.api` (the only place importing typer)."""

from __future__ import annotations

import sys

import typer

from planner.cli import (
    calibrate_cmd,
    catalog_cmd,
    check_cmd,
    estimate_cmd,
    profile_cmd,
    report_cmd,
    schema_cmd,
    simulate_cmd,
    size_cmd,
    sweep_cmd,
    trace_cmd,
)
from planner.errors import ExitCode, PlannerError
from planner.io.output import recording_inputs
from planner.io.sources import reading_once

app = typer.Typer(
    name="planner",
    help="Capacity planning and cost optimization for disaggregated LLM inference.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
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
app.command("report")(report_cmd.report)


def _err(line: str) -> None:
    sys.stderr.write(line + "\n")


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; map every outcome to an exit code (README: exit codes)."""
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    args = [a for a in (argv if argv is not None else sys.argv[1:]) if a != "--debug"]
    try:
        # no output of the command may replace a file it read; each file is read from disk once
        with recording_inputs(), reading_once():
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
            _err(f"error: {exc.format_message()}{where}")
            _err("hint: add --help for usage")
            return int(ExitCode.USAGE)
        return _internal(exc, debug)


def _internal(exc: Exception, debug: bool) -> int:
    """A bug: say so, with no traceback unless --debug."""
    if debug:
        raise exc
    _err(f"error: internal error ({type(exc).__name__}: {exc}); please report it, and rerun with --debug for a traceback")
    return int(ExitCode.INTERNAL)
