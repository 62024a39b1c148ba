"""Run every rule on a proposal: evaluate it once, size the optimal plan once (EFF001), collect the
outcomes, sort the findings (severity, code, subject) and decide the verdict and exit policy."""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from planner.check.rules import (
    RULES,
    SEVERITY_RANK,
    CheckContext,
    Finding,
    Optimal,
    Outcome,
    Policy,
    YamlPath,
    unfit_pools,
)
from planner.domain import Catalog, Deployment, Severity, Workload
from planner.errors import InputError, PlannerError
from planner.perf.evaluate import Evaluation, evaluate

FailOn = Severity


@dataclass(frozen=True, slots=True, kw_only=True)
class Check:
    """One rule applied to one subject (a JUnit test case)."""

    code: str
    subject: str
    finding: Finding | None


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckResult:
    workload: Workload
    deployment: Deployment
    policy: Policy
    evaluation: Evaluation | None
    optimal: Optimal | None
    findings: tuple[Finding, ...]
    checks: tuple[Check, ...]
    skipped: tuple[str, ...]  # codes not run (--skip, or no evaluation possible)
    fail_on: FailOn

    @property
    def failing(self) -> tuple[Finding, ...]:
        """Findings at or above ``fail_on``."""
        return tuple(f for f in self.findings if is_failing(f.severity, self.fail_on))

    @property
    def verdict(self) -> str:
        return "fail" if self.failing else "pass"


def is_failing(severity: str, fail_on: str) -> bool:
    return SEVERITY_RANK[severity] >= SEVERITY_RANK[fail_on] and severity != "info"


def sort_key(f: Finding) -> tuple[int, str, str]:
    return (-SEVERITY_RANK[f.severity], f.code, f.subject)


def optimal_plan(workload: Workload, catalog: Catalog, policy: Policy) -> Optimal:
    """The cheapest plan ``planner size`` finds for the same workload under the same policy
    (redundancy, headroom, budget, power cap), over the workload's allowed hardware."""
    from planner.optimize.sizing import size

    c = workload.constraints
    constraints = replace(
        c,
        redundancy=int(policy.redundancy.value),
        headroom_frac=policy.min_headroom_frac.value if policy.min_headroom_frac is not None else c.headroom_frac,
        budget_usd_per_hour=policy.budget_usd_per_hour.value if policy.budget_usd_per_hour is not None else None,
        power_cap_w=policy.power_cap_w.value if policy.power_cap_w is not None else None,
    )
    try:
        result = size(replace(workload, constraints=constraints), catalog, baselines=False)
    except PlannerError as exc:
        return Optimal(usd_per_hour=None, note=f"no optimal plan to compare with ({exc.message})")
    pools = ", ".join(
        f"{p.role} {p.replicas}x {p.gpu} tp{p.tp}" + (f" ({p.layout})" if p.layout else "") for p in result.plan.deployment.pools
    )
    return Optimal(usd_per_hour=result.plan.evaluation.usd_per_hour, summary=pools)


def run(
    workload: Workload,
    deployment: Deployment,
    catalog: Catalog,
    policy: Policy,
    *,
    pool_paths: Mapping[str, YamlPath] | None = None,
    class_paths: Mapping[str, YamlPath] | None = None,
    link_paths: Mapping[str, YamlPath] | None = None,
    fail_on: FailOn = "error",
    skip: Iterable[str] = (),
) -> CheckResult:
    """Evaluate the deployment (with the policy's redundancy) and apply every rule not in ``skip``."""
    skip_set = {s.upper() for s in skip}
    unknown = sorted(skip_set - set(RULES))
    if unknown:
        raise InputError(f"--skip {unknown[0]}: no such rule", hint=f"rules: {', '.join(sorted(RULES))}")
    if fail_on not in ("error", "warning"):
        raise InputError(f"--fail-on {fail_on}: use error or warning")
    evaluation = None
    if not unfit_pools(workload, deployment, catalog):
        with warnings.catch_warnings():
            # An unbounded first decode step makes the core's TTFT quantile search subtract inf from
            # inf (numpy warns); the result is the correct inf, and the findings say why.
            warnings.simplefilter("ignore", RuntimeWarning)
            evaluation = evaluate(workload, deployment, catalog, int(policy.redundancy.value))
    optimal = None
    if evaluation is not None and "EFF001" not in skip_set:
        optimal = optimal_plan(workload, catalog, policy)
    ctx = CheckContext(
        workload=workload,
        deployment=deployment,
        catalog=catalog,
        policy=policy,
        evaluation=evaluation,
        optimal=optimal,
        pool_paths=pool_paths or {},
        class_paths=class_paths or {},
        link_paths=link_paths or {},
    )
    checks: list[Check] = []
    skipped: list[str] = []
    for code in sorted(RULES):
        r = RULES[code]
        if code in skip_set or (r.needs_evaluation and evaluation is None):
            skipped.append(code)
            continue
        for o in r.check(ctx):
            checks.append(Check(code=code, subject=o.subject, finding=_finding(code, r.severity, o)))
    findings = sorted((c.finding for c in checks if c.finding is not None), key=sort_key)
    return CheckResult(
        workload=workload,
        deployment=deployment,
        policy=policy,
        evaluation=evaluation,
        optimal=optimal,
        findings=tuple(findings),
        checks=tuple(sorted(checks, key=lambda c: (c.code, c.subject))),
        skipped=tuple(skipped),
        fail_on=fail_on,
    )


def _finding(code: str, severity: Severity, o: Outcome) -> Finding | None:
    if not o.failed:
        return None
    return Finding(
        code=code,
        severity=o.severity or severity,
        subject=o.subject,
        message=o.message,
        observed=o.observed,
        limit=o.limit,
        unit=o.unit,
        path=o.path,
    )


def locate(result: CheckResult, where: Mapping[Finding, tuple[str, int | None]]) -> CheckResult:
    """The result with each finding's file and line filled in from ``where``."""

    def fill(f: Finding) -> Finding:
        file, line = where.get(f, (None, None))
        return replace(f, file=file, line=line)

    findings = tuple(fill(f) for f in result.findings)
    by_id = {id(old): new for old, new in zip(result.findings, findings, strict=True)}
    checks = tuple(replace(c, finding=by_id.get(id(c.finding))) if c.finding is not None else c for c in result.checks)
    return replace(result, findings=findings, checks=checks)
