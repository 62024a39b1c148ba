"""Solve a built model with HiGHS (default) or CBC; map PuLP's statuses to ours."""

from __future__ import annotations

import contextlib
import math
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import pulp

from planner.domain import SolverName
from planner.errors import SolverError
from planner.optimize.model import BuiltModel

Status = Literal["optimal", "feasible", "infeasible"]
MIP_REL_GAP = 1e-4  # the plan: within 0.01 % of the optimum, far inside the model's own error
BASELINE_REL_GAP = 5e-3  # baselines: packing many co-located pools is slow to prove to 0.01 %
MAX_NODES = 5000  # a deterministic work limit (a time limit would make output depend on the machine)
BASELINE_MAX_NODES = 500


@dataclass(frozen=True, slots=True)
class SolveOutcome:
    status: Status
    solver: str
    wall_s: float
    objective: float | None
    gap_frac: float | None  # relative MIP gap at the end (None where the solver does not report it)


class _HiGHS(pulp.HiGHS):  # type: ignore[misc]
    """PuLP's HiGHS interface, also mapping HiGHS's node-limit status ("solution limit"), which
    PuLP 3 does not know, to "feasible" when an incumbent exists."""

    def findSolutionValues(self, lp: pulp.LpProblem) -> tuple[int, int]:
        try:
            return super().findSolutionValues(lp)  # type: ignore[no-any-return]
        except KeyError:
            info = lp.solverModel.getInfo()
            objective = float(info.objective_function_value)
            if int(info.primal_solution_status) == 2 and math.isfinite(objective):  # 2: a feasible solution
                return pulp.LpStatusOptimal, pulp.LpSolutionIntegerFeasible
            return pulp.LpStatusNotSolved, pulp.LpSolutionNoSolutionFound


def make_solver(name: SolverName, time_limit_s: float | None, gap_rel: float, max_nodes: int) -> pulp.LpSolver:
    """Single-threaded, with a node limit: the same model gives the same answer on every run."""
    if name == "highs":
        return _HiGHS(msg=False, timeLimit=time_limit_s, gapRel=gap_rel, threads=1, mip_max_nodes=max_nodes)
    return pulp.PULP_CBC_CMD(msg=False, timeLimit=time_limit_s, gapRel=gap_rel, threads=1, maxNodes=max_nodes)


def _gap(problem: pulp.LpProblem, solver: SolverName) -> float | None:
    model = getattr(problem, "solverModel", None)
    if solver != "highs" or model is None:
        return None
    try:
        return float(model.getInfo().mip_gap)
    except (AttributeError, TypeError, ValueError):
        return None


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence what solver libraries print on the process's own stdout/stderr (HiGHS prints its
    banner when constructed, before PuLP can turn its output off): stdout carries only results."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, devnull):
            os.close(fd)


def solve(
    built: BuiltModel,
    solver: SolverName = "highs",
    time_limit_s: float | None = None,
    gap_rel: float = MIP_REL_GAP,
    max_nodes: int = MAX_NODES,
) -> SolveOutcome:
    return solve_problem(built.problem, solver, time_limit_s, gap_rel, max_nodes)


def solve_problem(
    problem: pulp.LpProblem,
    solver: SolverName = "highs",
    time_limit_s: float | None = None,
    gap_rel: float = MIP_REL_GAP,
    max_nodes: int = MAX_NODES,
) -> SolveOutcome:
    """Solve any of the optimizer's PuLP problems (the sizing model, the purchase model) the same way."""
    start = time.perf_counter()
    try:
        with _quiet():
            status = problem.solve(make_solver(solver, time_limit_s, gap_rel, max_nodes))
    except pulp.PulpSolverError as exc:
        raise SolverError(f"{solver} failed: {exc}") from None
    wall = time.perf_counter() - start
    sol = problem.sol_status
    gap = _gap(problem, solver)
    if status == pulp.LpStatusOptimal and sol == pulp.LpSolutionOptimal:
        return SolveOutcome("optimal", solver, wall, pulp.value(problem.objective), gap)
    if sol == pulp.LpSolutionIntegerFeasible:
        return SolveOutcome("feasible", solver, wall, pulp.value(problem.objective), gap)
    if status == pulp.LpStatusInfeasible or sol == pulp.LpSolutionInfeasible:
        return SolveOutcome("infeasible", solver, wall, None, None)
    if status == pulp.LpStatusUnbounded:
        raise SolverError(f"the {problem.name} model is unbounded: a bug, please report it")
    raise SolverError(f"{solver} found no plan within the time limit ({pulp.LpStatus[status]})", hint="raise --time-limit-s")


def binding(
    built: BuiltModel, families: tuple[str, ...] = ("gpu_availability", "power_cap", "budget", "kv_bandwidth")
) -> list[str]:
    """Names of the limit constraints that hold with (almost) no slack in the solution."""
    out = []
    for family in families:
        for name in built.families.get(family, []):
            con = built.problem.constraints[name]
            activity = sum(abs(coef * (var.value() or 0.0)) for var, coef in con.items())
            if activity <= 0:
                continue  # 0 <= 0: an unused link or GPU type, not a binding limit
            scale = max(1.0, abs(con.constant), activity)
            slack = con.slack
            if slack is not None and abs(slack) <= 1e-6 * scale:
                out.append(name)
    return sorted(out)


def values(built: BuiltModel) -> tuple[dict[str, int], dict[tuple[str, str], float], str | None]:
    """Replica counts, routing shares and the chosen link of a solved model."""
    n = {k: round(v.value() or 0.0) for k, v in built.n.items()}
    x = {k: max(0.0, min(1.0, v.value() or 0.0)) for k, v in built.x.items()}
    link = next((lk for lk, v in sorted(built.y.items()) if (v.value() or 0.0) > 0.5), None)
    return n, x, link
