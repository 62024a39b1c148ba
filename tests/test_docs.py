"""The README documents what the project does: its commands, and the CI test command."""

from __future__ import annotations

import re
from pathlib import Path

from conftest import command_paths

ROOT = Path(__file__).resolve().parent.parent


def _section(text: str, heading: str) -> str:
    """The body of the ``## heading`` section of a Markdown text."""
    body = text.split(f"\n## {heading}\n", 1)[1]
    return body.split("\n## ", 1)[0]


def test_ci_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    ci_lines = [
        ln
        for ln in (ROOT / ".ci" / "run").read_text().splitlines()
        if ln and not ln.startswith(("#", "set ", "cd ", "bash .ci/"))
    ]
    assert len(ci_lines) == 1
    assert ci_lines[0] in readme
    assert "pytest" in ci_lines[0]
    # CI runs the full lane: the default `python -m pytest` leaves out the tests marked slow
    assert ci_lines[0].endswith("python -m pytest -m 'slow or not slow'"), ci_lines[0]


def test_every_command_is_documented() -> None:
    """Every command and sub-command of the typer app has a row in the README's command table and a
    help text; every command the table names exists."""
    table = [ln for ln in _section((ROOT / "README.md").read_text(), "Commands").splitlines() if ln.startswith("| `planner ")]
    assert table
    paths = [p for p in command_paths() if p]
    assert len(paths) > 1 and any(len(p) == 2 for p in paths)  # the walk went into the groups
    undocumented = [" ".join(p) for p in paths if not any(f"`planner {' '.join(p)}" in row for row in table)]
    assert undocumented == [], "commands missing from the README's command table"

    import typer.main

    from planner.cli import app

    root = typer.main.get_command(app)
    for path in paths:
        cmd = root
        for name in path:
            cmd = cmd.commands[name]  # type: ignore[attr-defined]
        assert (cmd.help or "").strip(), f"planner {' '.join(path)} has no help text"
    # and the other way: each `planner WORD...` in the table starts with a real command
    for row in table:
        for words in re.findall(r"`planner ([^`]*)`", row):
            first = words.split()[0]
            assert [first] in paths, (first, row)


def test_readme_workload_example_is_an_example_file() -> None:
    """The workload block in the README is the DESIGN example; chatbot.yaml differs only in budget."""
    readme = (ROOT / "README.md").read_text()
    chatbot = (ROOT / "examples" / "workloads" / "chatbot.yaml").read_text()
    assert "budget_usd_per_month: 400000" in readme
    assert "budget_usd_per_month: 500000" in chatbot
