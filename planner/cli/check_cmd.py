"""``planner check``: the CI gate for infrastructure proposals (exit 0 pass, 1 fail, 2 invalid input)."""

from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from planner.cli._common import CatalogDirOpt, EngineOpt, Format, OutputOpt, err_console, output_document


class CheckFormat(StrEnum):
    table = "table"
    json = "json"
    yaml = "yaml"
    csv = "csv"
    markdown = "markdown"
    github = "github"


class FailOn(StrEnum):
    error = "error"
    warning = "warning"


STEP_SUMMARY_ENV = "GITHUB_STEP_SUMMARY"


def check(
    proposal_file: Annotated[
        Path, typer.Argument(metavar="PROPOSAL.yaml", help="Proposal, or a plan from planner size.", dir_okay=False)
    ],
    fail_on: Annotated[
        FailOn, typer.Option("--fail-on", help="Fail on findings of this severity or above.", case_sensitive=False)
    ] = FailOn.error,
    no_fail: Annotated[bool, typer.Option("--no-fail", help="Advisory run: report, but exit 0 even if the check fails.")] = False,
    junit: Annotated[
        Path | None, typer.Option("--junit", help="Also write JUnit XML (one test case per rule and subject).", dir_okay=False)
    ] = None,
    skip: Annotated[list[str] | None, typer.Option("--skip", help="Rule code not to run (repeatable, e.g. EFF001).")] = None,
    engine: EngineOpt = None,
    catalog_dir: CatalogDirOpt = None,
    fmt: Annotated[
        CheckFormat,
        typer.Option(
            "--format",
            "-f",
            help="Output format; markdown and github also append the markdown summary to $GITHUB_STEP_SUMMARY when set.",
            case_sensitive=False,
        ),
    ] = CheckFormat.table,
    output: OutputOpt = None,
) -> int:
    """Check a proposal against its SLOs, memory, links, budget, power, redundancy and the optimal plan."""
    from planner.api.check import CheckOptions, run_check
    from planner.errors import ExitCode, InputError
    from planner.io.output import check_output, emit, write_text_atomic
    from planner.report.check import check_data, check_github, check_junit, check_markdown, check_table, csv_rows
    from planner.report.engine import engine_line, with_engine_column
    from planner.report.envelope import envelope
    from planner.report.speculative import with_speculative

    run = run_check(
        CheckOptions(
            proposal_file=proposal_file,
            fail_on="warning" if fail_on is FailOn.warning else "error",
            skip=tuple(skip or ()),
            no_fail=no_fail,
            engine=engine,
            catalog_dirs=tuple(catalog_dir or ()),
        )
    )
    result, name, engine_spec = run.result, run.name, run.catalog.engine
    line = with_speculative(engine_line(engine_spec), result.workload)
    markdown = check_markdown(result, name, line)
    if junit is not None:  # refused before anything is printed or written
        check_output(junit, inputs=(proposal_file,))
    if fmt is CheckFormat.github:
        emit(check_github(result), output, inputs=(proposal_file,))
    else:
        if fmt is CheckFormat.table:
            for w in run.warnings:
                err_console().print(f"warning: {w}", markup=False)
        output_document(
            envelope("check", run.status, run.inputs, check_data(result), run.warnings),
            Format(fmt.value),
            output,
            table=check_table(result, name, line),
            markdown=markdown,
            csv_rows=with_engine_column(csv_rows(result), engine_spec),
            inputs=(proposal_file,),
        )
    if junit is not None:
        write_text_atomic(junit, check_junit(result, name, engine_spec.label), inputs=(proposal_file,))
    summary = os.environ.get(STEP_SUMMARY_ENV)
    if summary and fmt in (CheckFormat.markdown, CheckFormat.github):
        try:
            with open(summary, "a", encoding="utf-8") as fh:
                fh.write(markdown + "\n")
        except OSError as exc:
            raise InputError(f"${STEP_SUMMARY_ENV} {summary}: cannot append: {exc.strerror}") from None
    if run.failed:
        return int(ExitCode.CHECK_FAILED)
    return int(ExitCode.OK)
