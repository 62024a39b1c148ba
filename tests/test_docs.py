"""The README documents what the project does: its commands, and the CI test command."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


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


def test_every_command_is_documented() -> None:
    readme = (ROOT / "README.md").read_text()
    for command in (
        "planner size",
        "planner estimate prefill",
        "planner estimate decode",
        "planner catalog list",
        "planner catalog show",
        "planner catalog validate",
        "planner calibrate fit",
        "planner schema",
    ):
        assert command in readme, command


def test_readme_workload_example_is_an_example_file() -> None:
    """The workload block in the README is the DESIGN example; chatbot.yaml differs only in budget."""
    readme = (ROOT / "README.md").read_text()
    chatbot = (ROOT / "examples" / "workloads" / "chatbot.yaml").read_text()
    assert "budget_usd_per_month: 400000" in readme
    assert "budget_usd_per_month: 500000" in chatbot
