"""``planner check``: rules over a proposal's evaluation (the CI gate).

Pipeline: ``io.proposal`` (read, resolve) → ``perf.evaluate`` → :mod:`planner.check.runner` (apply
:mod:`planner.check.rules`, sort findings, verdict) → ``report.check`` (table, JSON, markdown, GitHub
annotations, JUnit).
"""

from __future__ import annotations

from planner.check.rules import RULES, Finding, Limit, Optimal, Policy, Rule
from planner.check.runner import Check, CheckResult, run

__all__ = ["RULES", "Check", "CheckResult", "Finding", "Limit", "Optimal", "Policy", "Rule", "run"]
