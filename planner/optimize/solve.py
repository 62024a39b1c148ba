"""Solve a built model with HiGHS (default) or CBC; map PuLP's statuses to ours."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import pulp

from planner.errors import SolverError
from planner.optimize.model import BuiltModel

SolverName = Literal["highs", "cbc"]
Status = Literal["optimal", "feasible", "infeasible"]
MIP_REL_GAP = 1e-6


@dataclass(frozen=True, slots=True)
class SolveOutcome:
    status: Status
    solver: str
    wall_s: float
    objective: float | None


def make_solver(name: SolverName, time_limit_s: float | None) -> pulp.LpSolver:
    """Single-threaded, tight gap: the same model gives the same answer on every run."""
    if name == "highs":
        return pulp.HiGHS(msg=False, timeLimit=time_limit_s, gapRel=MIP_REL_GAP, threads=1)
    return pulp.PULP_CBC_CMD(msg=False, timeLimit=time_limit_s, gapRel=MIP_REL_GAP, threads=1)


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


def solve(built: BuiltModel, solver: SolverName = "highs", time_limit_s: float | None = None) -> SolveOutcome:
    start = time.perf_counter()
    try:
        with _quiet():
            status = built.problem.solve(make_solver(solver, time_limit_s))
    except pulp.PulpSolverError as exc:
        raise SolverError(f"{solver} failed: {exc}") from None
    wall = time.perf_counter() - start
    sol = built.problem.sol_status
    if status == pulp.LpStatusOptimal and sol == pulp.LpSolutionOptimal:
        return SolveOutcome("optimal", solver, wall, pulp.value(built.problem.objective))
    if sol == pulp.LpSolutionIntegerFeasible:
        return SolveOutcome("feasible", solver, wall, pulp.value(built.problem.objective))
    if status == pulp.LpStatusInfeasible or sol == pulp.LpSolutionInfeasible:
        return SolveOutcome("infeasible", solver, wall, None)
    if status == pulp.LpStatusUnbounded:
        raise SolverError("the sizing model is unbounded: a bug, please report it")
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
