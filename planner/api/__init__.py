"""The library's door: one module per command, each owning its options, its orchestration and its result.

What the CLI calls and what Python users import; no printing, no exit codes. ``planner.api.<command>`` holds a
command's code (estimate, serve, size, check, simulate, profile, trace, sweep, report, calibrate, catalog, schema);
:mod:`planner.api.inputs` resolves catalogs, ids and workload documents for all of them. Every public name is
re-exported here and listed in ``__all__``.
"""

from __future__ import annotations

from planner.api.calibrate import (
    TRAINING_MODELS,
    CalibrationResult,
    ServingCalibration,
    calibrate,
    calibrate_serving,
    fit_op_tables,
    serving_cases,
    write_efficiency_overlay,
)
from planner.api.check import Proposal, check, evaluate, load_proposal
from planner.api.estimate import EstimateResult, estimate
from planner.api.inputs import (
    check_context,
    engine_catalog,
    hardware,
    load_workload_spec,
    planning_catalog,
    proposal_catalog,
    resolve_gpu,
    resolve_model,
    resolve_workload,
    workload_catalog,
    workload_spec_from_flags,
)
from planner.api.serve import ServeRequest, ServeResult, estimate_serve, serve_replica
from planner.api.simulate import simulate
from planner.api.size import REFERENCE_ENGINES, EngineComparison, EngineSizing, engine_list, several_engines, size, size_engines
from planner.domain import (  # the closed vocabularies, for callers (the CLI among them)
    PRECISIONS,
    LinkKind,
    Objective,
    Phase,
    Precision,
    PricingMode,
    Role,
    Routing,
    ServeMode,
    Severity,
    SolverName,
)
from planner.io.catalog import load_catalog

__all__ = [
    "PRECISIONS",
    "REFERENCE_ENGINES",
    "TRAINING_MODELS",
    "CalibrationResult",
    "EngineComparison",
    "EngineSizing",
    "EstimateResult",
    "LinkKind",
    "Objective",
    "Phase",
    "Precision",
    "PricingMode",
    "Proposal",
    "Role",
    "Routing",
    "ServeMode",
    "ServeRequest",
    "ServeResult",
    "ServingCalibration",
    "Severity",
    "SolverName",
    "calibrate",
    "calibrate_serving",
    "check",
    "check_context",
    "engine_catalog",
    "engine_list",
    "estimate",
    "estimate_serve",
    "evaluate",
    "fit_op_tables",
    "hardware",
    "load_catalog",
    "load_proposal",
    "load_workload_spec",
    "planning_catalog",
    "proposal_catalog",
    "resolve_gpu",
    "resolve_model",
    "resolve_workload",
    "serve_replica",
    "serving_cases",
    "several_engines",
    "simulate",
    "size",
    "size_engines",
    "workload_catalog",
    "workload_spec_from_flags",
    "write_efficiency_overlay",
]
