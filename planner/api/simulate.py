"""``planner simulate``: a plan request by request beside its analytic prediction.

:func:`run_simulate` is the whole command (the CLI parses flags into :class:`SimulateOptions` and prints the
:class:`SimulateRun`); :func:`simulate` simulates a workload and deployment already resolved. The simulator
(:mod:`planner.sim`) reads no files: a trace is read here and handed to it as arrays."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from planner.domain import (
    Catalog,
    Deployment,
    InputSource,
    Trace,
    Workload,
)
from planner.errors import InputError
from planner.io.sources import reading_once
from planner.sim import SimOptions

if TYPE_CHECKING:
    from planner.api.check import Proposal
    from planner.sim import Simulation

__all__ = ["SimOptions", "SimulateOptions", "SimulateRun", "read_sim_trace", "run_simulate", "simulate"]


@dataclass(frozen=True, slots=True, kw_only=True)
class SimulateOptions:
    """Everything ``planner simulate`` computes from: the proposal (or ``planner size`` plan), the catalog
    (``catalog_dirs``, ``engine``: ``NAME`` or ``NAME@VERSION``, None for the proposal's) and the simulator's
    knobs (:class:`planner.sim.SimOptions`; its ``trace`` is the trace file replayed, ``trace_format`` its format)."""

    proposal_file: Path
    engine: str | None = None
    catalog_dirs: Sequence[Path] = ()
    sim: SimOptions = field(default_factory=SimOptions)


@dataclass(frozen=True, slots=True, kw_only=True)
class SimulateRun:
    """What ``planner simulate`` reports: the simulation, the envelope's ``inputs`` and ``warnings``, and the
    text files read (the proposal, and the workload file it names)."""

    options: SimulateOptions
    proposal: Proposal
    catalog: Catalog
    simulation: Simulation
    inputs: dict[str, Any]
    warnings: tuple[str, ...]
    sources: tuple[InputSource, ...]

    @property
    def status(self) -> str:
        return "ok"


def read_sim_trace(path: Path, fmt: str = "auto") -> tuple[Trace, str]:
    """The requests of a trace file (any format ``planner profile`` reads) and the SHA-256 of its bytes."""
    from planner.io.traces import read_trace

    trace = read_trace(path, fmt).trace
    # read_trace does not hash what it reads: the file is read a second time for its digest (in chunks)
    with path.open("rb") as fh:
        digest = hashlib.file_digest(fh, "sha256").hexdigest()
    return trace, digest


def _simulate(
    workload: Workload, deployment: Deployment, catalog: Catalog, options: SimOptions | None
) -> tuple[Simulation, str | None]:
    from planner.sim import resolve_options
    from planner.sim import simulate as _sim

    piped = [p for p in deployment.pools if p.pp > 1]
    if piped:
        raise InputError(
            f"pools: {piped[0].key} is pipeline parallel (pp {piped[0].pp}); simulate replays single-stage replicas "
            "only (the stages' micro-batch rotation is not simulated): check and size evaluate it analytically"
        )
    opt = resolve_options(workload, deployment, catalog, options)  # bad options before the trace is read
    if opt.trace is None:
        return _sim(workload, deployment, catalog, opt), None
    trace, digest = read_sim_trace(opt.trace, opt.trace_format)
    return _sim(workload, deployment, catalog, opt, trace=trace), digest


def simulate(workload: Workload, deployment: Deployment, catalog: Catalog, options: SimOptions | None = None) -> Simulation:
    """Discrete-event simulation of a deployment beside its analytic prediction (see :mod:`planner.sim`;
    ``options``: requests, seed, routing, trace, caps; the defaults of :class:`planner.sim.SimOptions`;
    a ``trace`` file is read here and its arrays handed to the simulator)."""
    with reading_once():
        return _simulate(workload, deployment, catalog, options)[0]


def run_simulate(options: SimulateOptions) -> SimulateRun:
    """``planner simulate``: read the proposal, resolve its catalog, simulate it (with the trace, if any)."""
    from planner.api.check import load_proposal, proposal_sources
    from planner.api.inputs import proposal_catalog
    from planner.report.engine import engine_doc, transfer_warnings
    from planner.report.speculative import workload_speculative

    path, sim = options.proposal_file, options.sim
    with reading_once():
        catalog = proposal_catalog(path, options.catalog_dirs, options.engine)
        proposal = load_proposal(path, catalog)
        result, trace_sha256 = _simulate(proposal.workload, proposal.deployment, catalog, sim)
        sources = proposal_sources(path)
    inputs: dict[str, Any] = {
        "proposal_file": str(path),
        "proposal_sha256": sources[0].sha256,
        "requests": sim.requests,
        "seed": sim.seed,
        "routing": sim.routing,
        "prefill_token_budget": sim.prefill_token_budget,
        "warmup_frac": sim.warmup_frac,
        "out_of_service": result.options.out_of_service,
        "length_jitter": sim.length_jitter,
        "time_cap_s": sim.time_cap_s,
        "queue_cap": sim.queue_cap,
        "engine": engine_doc(catalog.engine),
    }
    if sim.trace is not None:
        inputs["trace_file"] = str(sim.trace)
        inputs["trace_sha256"] = trace_sha256
        inputs["trace_format"] = sim.trace_format
    pools = proposal.deployment.pools
    spec_inputs, spec_warnings = workload_speculative(proposal.workload)
    inputs.update(spec_inputs)
    warnings = (
        *spec_warnings,
        *result.warnings,
        *transfer_warnings(catalog, (p.gpu for p in pools), proposal.workload.precision, power=False),
    )
    return SimulateRun(
        options=options,
        proposal=proposal,
        catalog=catalog,
        simulation=result,
        inputs=inputs,
        warnings=warnings,
        sources=sources,
    )
