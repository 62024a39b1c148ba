"""``planner check``: a proposal or plan against its SLOs, memory, links, budget, power, redundancy.

:func:`run_check` is the whole command (the CLI parses flags into :class:`CheckOptions` and prints the
:class:`CheckRun`); :func:`check` applies the rules to a proposal with a catalog already resolved."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from planner.domain import (
    Catalog,
    Deployment,
    InputSource,
    Workload,
)
from planner.errors import InputError
from planner.io.sources import read_source, reading_once
from planner.perf.memory import check_replica

if TYPE_CHECKING:
    from planner.check.runner import CheckResult
    from planner.io.proposal import ProposalSpec
    from planner.io.workload import WorkloadSpec
    from planner.perf.evaluate import Evaluation


__all__ = ["CheckOptions", "CheckRun", "Proposal", "check", "evaluate", "load_proposal", "proposal_sources", "run_check"]

FailOn = Literal["error", "warning"]


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckOptions:
    """Everything ``planner check`` computes from: the proposal (or ``planner size`` plan), the severity that
    fails it (``fail_on``), rule codes not run (``skip``: codes, or comma lists of them, any case), whether a
    failing check still succeeds (``no_fail``: an advisory run) and the catalog (``catalog_dirs``, ``engine``:
    ``NAME`` or ``NAME@VERSION``, None for the proposal's)."""

    proposal_file: Path
    fail_on: FailOn = "error"
    skip: Sequence[str] = ()
    no_fail: bool = False
    engine: str | None = None
    catalog_dirs: Sequence[Path] = ()

    @property
    def skip_codes(self) -> list[str]:
        """``skip`` split at commas, blanks left out."""
        return [c.strip() for item in self.skip for c in item.split(",") if c.strip()]


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckRun:
    """What ``planner check`` reports: the findings and verdict, the catalog they were computed with, the
    envelope's ``inputs`` and ``warnings``, and the files read (the proposal, and the workload file it names)."""

    options: CheckOptions
    result: CheckResult
    catalog: Catalog
    inputs: dict[str, Any]
    warnings: tuple[str, ...]
    sources: tuple[InputSource, ...]

    @property
    def name(self) -> str:
        """The proposal as the reports name it."""
        return str(self.options.proposal_file)

    @property
    def status(self) -> str:
        """The envelope's status: ``ok`` or ``check_failed``."""
        return "ok" if self.result.verdict == "pass" else "check_failed"

    @property
    def failed(self) -> bool:
        """The command fails (exit 1): the check failed and the run is not advisory."""
        return self.result.verdict == "fail" and not self.options.no_fail


@dataclass(frozen=True, slots=True, kw_only=True)
class Proposal:
    """A proposal or plan read from a file: its documents and the resolved workload and deployment."""

    spec: ProposalSpec
    workload_spec: WorkloadSpec
    workload: Workload
    deployment: Deployment


def load_proposal(path: Path, catalog: Catalog) -> Proposal:
    """Read a proposal (or a ``planner size`` plan) and resolve it against the catalog."""
    from planner.io.proposal import read_proposal, to_domain

    with reading_once():
        spec, workload_spec = read_proposal(path)
    workload, deployment = to_domain(spec, workload_spec, catalog, str(path))
    return Proposal(spec=spec, workload_spec=workload_spec, workload=workload, deployment=deployment)


def proposal_sources(path: Path) -> tuple[InputSource, ...]:
    """The files a proposal is read from: the proposal, then the workload file it names (if it names one)."""
    from planner.io.proposal import read_proposal_with_origin

    with reading_once():
        _, _, written_in = read_proposal_with_origin(path)
        proposal = read_source(path)
        if written_in == path:
            return (proposal,)
        return (proposal, read_source(written_in))


def evaluate(workload: Workload, deployment: Deployment, catalog: Catalog, redundancy: int | None = None) -> Evaluation:
    """Predicted percentiles, utilization, power and cost of a deployment (see :mod:`planner.perf.evaluate`)."""
    from planner.perf.evaluate import evaluate as _evaluate

    return _evaluate(workload, deployment, catalog, redundancy)


def check(
    path: Path, catalog: Catalog, *, fail_on: Literal["error", "warning"] = "error", skip: Sequence[str] = ()
) -> CheckResult:
    """Apply every ``planner check`` rule to a proposal (or a ``planner size`` plan); each finding
    carries the file and line of the offending YAML key (see :mod:`planner.check`). Thresholds come
    from the proposal's ``policy``, else from the workload's ``constraints``."""
    with reading_once():
        return _check(path, catalog, fail_on, skip)


def _check(path: Path, catalog: Catalog, fail_on: FailOn, skip: Sequence[str]) -> CheckResult:
    from planner.check.rules import DEFAULT_MAX_COST_ABOVE_OPTIMAL_FRAC, Finding, Limit, Policy, YamlPath
    from planner.check.runner import locate, run
    from planner.io.envelope import envelope_command
    from planner.io.yamlio import find_line, loads
    from planner.units import HOURS_PER_MONTH, W_PER_KW

    proposal = load_proposal(path, catalog)
    spec, wl, dep = proposal.spec, proposal.workload, proposal.deployment
    for i, p in enumerate(dep.pools):
        try:
            check_replica(catalog.models[wl.model], catalog.gpus[p.gpu], p.tp, p.attention_dp, p.moe_ep, p.pp)
        except InputError as exc:
            raise InputError(f"{path}: pools[{i}].tp: {exc.message}", hint=exc.hint) from None

    pol, c = spec.policy, proposal.workload_spec.constraints

    def limit(key: str, value: float | None, fallback_key: str, fallback: float | None, scale: float = 1.0) -> Limit | None:
        if value is not None:
            return Limit(value=value * scale, path=("policy", key))
        return None if fallback is None else Limit(value=fallback * scale, path=("workload", "constraints", fallback_key))

    redundancy = limit("redundancy", pol.redundancy, "redundancy", c.redundancy)
    assert redundancy is not None
    policy = Policy(
        budget_usd_per_hour=limit(
            "budget_usd_per_month", pol.budget_usd_per_month, "budget_usd_per_month", c.budget_usd_per_month, 1 / HOURS_PER_MONTH
        ),
        power_cap_w=limit("power_cap_kw", pol.power_cap_kw, "power_cap_kw", c.power_cap_kw, W_PER_KW),
        min_headroom_frac=limit("min_headroom_frac", pol.min_headroom_frac, "headroom_frac", c.headroom_frac or None),
        max_cost_above_optimal_frac=limit("max_cost_above_optimal_frac", pol.max_cost_above_optimal_frac, "", None)
        or Limit(value=DEFAULT_MAX_COST_ABOVE_OPTIMAL_FRAC, path=("policy",)),
        redundancy=redundancy,
    )
    pool_paths: dict[str, YamlPath] = {p.key: ("pools", i) for i, p in enumerate(dep.pools)}
    class_paths: dict[str, YamlPath] = {k.name: ("workload", "classes", i) for i, k in enumerate(proposal.workload_spec.classes)}
    link_paths: dict[str, YamlPath] = {}
    if spec.links is not None:
        link_paths = {use.link: ("links", j) for j, use in enumerate(dep.links)}
    for i, p in enumerate(dep.pools):
        if p.link is not None:
            link_paths.setdefault(p.link, ("pools", i, "link"))
    result = run(
        wl,
        dep,
        catalog,
        policy,
        pool_paths=pool_paths,
        class_paths=class_paths,
        link_paths=link_paths,
        fail_on=fail_on,
        skip=skip,
    )

    # Where each finding is written: in the proposal, in a plan's layout, or in the workload file it names.
    text = read_source(path).text
    is_plan = envelope_command(loads(text, str(path))) == "size"
    workload_file = None
    if isinstance(spec.workload, str):
        named = Path(spec.workload)
        workload_file = Path(os.path.normpath(named if named.is_absolute() else path.parent / named))
    texts: dict[Path, str] = {path: text}
    where: dict[Finding, tuple[str, int | None]] = {}
    for f in result.findings:
        file, dotted = path, f.path
        if is_plan and dotted:
            dotted = {"pools": ("data",), "links": ("data",), "workload": ("inputs",)}.get(str(dotted[0]), ()) + dotted
        elif workload_file is not None and dotted[:1] == ("workload",) and len(dotted) > 1:
            file, dotted = workload_file, dotted[1:]
            if file not in texts:
                texts[file] = read_source(file).text
        where[f] = (str(file), find_line(texts[file], dotted) if dotted else None)
    return locate(result, where)


def run_check(options: CheckOptions) -> CheckRun:
    """``planner check``: resolve the proposal's catalog, apply every rule, and assemble what the report needs."""
    from planner.api.inputs import proposal_catalog
    from planner.report.engine import engine_doc, transfer_warnings
    from planner.report.speculative import workload_speculative

    path, codes = options.proposal_file, options.skip_codes
    with reading_once():
        catalog = proposal_catalog(path, options.catalog_dirs, options.engine)
        result = _check(path, catalog, options.fail_on, codes)
        sources = proposal_sources(path)
    inputs: dict[str, Any] = {
        "proposal_file": str(path),
        "proposal_sha256": sources[0].sha256,
        "fail_on": options.fail_on,
        "skip": sorted({c.upper() for c in codes}),
        "engine": engine_doc(catalog.engine),
    }
    spec_inputs, warnings = workload_speculative(result.workload)
    inputs.update(spec_inputs)
    warnings += transfer_warnings(catalog, (p.gpu for p in result.deployment.pools), result.workload.precision)
    return CheckRun(options=options, result=result, catalog=catalog, inputs=inputs, warnings=tuple(warnings), sources=sources)
