"""Every example's JSON output, byte for byte, against the copy stored before a refactor (tests/golden_cases.py).

A difference here means a change moved a number or a key: either it is a bug, or the change is intended and the
stored outputs are regenerated with ``python tests/golden_cases.py --update`` in the same commit, which says why."""

from __future__ import annotations

import difflib

import pytest

from tests.golden_cases import CASES, GOLDEN, run


@pytest.mark.slow  # a refactor guard over every example: the full lane (.ci/run) runs it
@pytest.mark.parametrize("name", list(CASES))
def test_json_output_is_unchanged(name: str) -> None:
    code, text = run(CASES[name])
    assert code in (0, 1), f"{name}: exit {code}"
    want = (GOLDEN / f"{name}.json").read_text(encoding="utf-8")
    if text != want:
        diff = "".join(difflib.unified_diff(want.splitlines(True), text.splitlines(True), "stored", "now", n=1))
        pytest.fail(f"{name}: JSON output changed\n{diff[:4000]}")
