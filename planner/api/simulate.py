"""``planner simulate``: a plan request by request beside its analytic prediction."""

from __future__ import annotations

from typing import TYPE_CHECKING

from planner.domain import (
    Catalog,
    Deployment,
    Workload,
)

if TYPE_CHECKING:
    from planner.sim import SimOptions, Simulation


def simulate(workload: Workload, deployment: Deployment, catalog: Catalog, options: SimOptions | None = None) -> Simulation:
    """Discrete-event simulation of a deployment beside its analytic prediction (see :mod:`planner.sim`;
    ``options``: requests, seed, routing, trace, caps; the defaults of :class:`planner.sim.SimOptions`)."""
    from planner.sim import SimOptions
    from planner.sim import simulate as _simulate

    return _simulate(workload, deployment, catalog, options if options is not None else SimOptions())
