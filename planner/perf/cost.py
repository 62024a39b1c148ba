"""Cost of a GPU-hour and of network ports under a pricing mode.

* on-demand: the catalog's default list price for the GPU;
* reserved: that price times ``1 − discount_frac``;
* capex: server capex / (GPUs per server · amortization hours), plus the GPU's average power times
  PUE times the electricity price. NIC ports are priced only here (``port_usd`` amortized the same
  way): cloud instance prices already include their network adapters.

A GPU-hour is a fixed part (:func:`gpu_fixed_usd_per_hour`: the list, reserved or amortized price,
whatever the GPU does) plus an energy part linear in its average power (:func:`energy_usd_per_hour`,
capex only). The reports price a plan with :func:`gpu_usd_per_hour`; the optimizer's objective is
linear over the same two parts (the fixed part per replica, the energy part as
:func:`energy_usd_per_wh` times its power expression), so one formula prices both.
"""

from __future__ import annotations

from collections.abc import Iterable

from planner.domain import Catalog, LinkSpec, Pricing
from planner.errors import InputError
from planner.units import HOURS_PER_MONTH, W_PER_KW

HOURS_PER_YEAR = 12 * HOURS_PER_MONTH


def gpu_fixed_usd_per_hour(catalog: Catalog, gpu_id: str, pricing: Pricing) -> float:
    """The part of a GPU-hour of ``gpu_id`` that does not depend on its power: the on-demand price,
    the reserved price, or the capex amortized per hour (electricity excluded). Raises
    :class:`InputError` when no figure exists."""
    if pricing.mode in ("on-demand", "reserved"):
        price = catalog.default_price(gpu_id)
        if price is None:
            raise InputError(
                f"{gpu_id}: no on-demand price in the catalog", hint="add a default row to prices.yaml or drop this GPU"
            )
        discount = pricing.discount_frac if pricing.mode == "reserved" else 0.0
        return price.usd_per_gpu_hour * (1.0 - discount)
    server = next((s for s in catalog.servers if s.gpu == gpu_id and s.capex_usd is not None), None)
    if server is None or server.capex_usd is None:
        raise InputError(f"{gpu_id}: no server capex in the catalog for pricing mode capex")
    years = pricing.amortization_years or server.amortization_years
    if years is None:
        raise InputError(f"{gpu_id}: capex pricing needs amortization_years (pricing or catalog)")
    return server.capex_usd / server.gpus_per_server / (years * HOURS_PER_YEAR)


def energy_usd_per_hour(catalog: Catalog, pricing: Pricing, avg_power_w: float) -> float:
    """Electricity for ``avg_power_w`` of board power for one hour, PUE included (capex only; 0
    where cloud prices include power). Linear in ``avg_power_w``."""
    if pricing.mode != "capex":
        return 0.0
    kwh_price = pricing.usd_per_kwh if pricing.usd_per_kwh is not None else catalog.electricity_usd_per_kwh
    pue = pricing.pue if pricing.pue is not None else catalog.pue
    if kwh_price is None or pue is None:
        raise InputError("capex pricing needs usd_per_kwh and pue (pricing or catalog)")
    return avg_power_w / W_PER_KW * pue * kwh_price


def energy_usd_per_wh(catalog: Catalog, pricing: Pricing) -> float:
    """USD per watt-hour of board energy: the slope of :func:`energy_usd_per_hour` (0 outside capex),
    the coefficient of the optimizer's power expression in its cost."""
    return energy_usd_per_hour(catalog, pricing, 1.0)


def gpu_usd_per_hour(catalog: Catalog, gpu_id: str, pricing: Pricing, avg_power_w: float) -> float:
    """Price of one GPU-hour of ``gpu_id``; raises :class:`InputError` when no figure exists."""
    return gpu_fixed_usd_per_hour(catalog, gpu_id, pricing) + energy_usd_per_hour(catalog, pricing, avg_power_w)


def port_usd_per_hour(link: LinkSpec, pricing: Pricing, catalog: Catalog) -> float:
    """Amortized price of one NIC port per hour (capex mode only; 0 where cloud prices include it)."""
    if pricing.mode != "capex" or link.port_usd is None:
        return 0.0
    years = pricing.amortization_years
    if years is None:
        years = next((s.amortization_years for s in catalog.servers if s.amortization_years is not None), None)
    if years is None:
        return 0.0
    return link.port_usd / (years * HOURS_PER_YEAR)


def price_basis_warning(catalog: Catalog, gpus: Iterable[str], pricing: Pricing) -> str | None:
    """A warning when the list prices behind ``gpus`` come from different providers or dates (their
    differences may be the basis, not the hardware), naming each GPU's row; None on one basis or capex."""
    if pricing.mode == "capex":
        return None
    rows = [r for r in (catalog.default_price(g) for g in sorted(set(gpus))) if r is not None]
    if len({(r.provider, r.as_of) for r in rows}) <= 1:
        return None
    listed = "; ".join(f"{r.gpu} {r.provider} {r.as_of} ({r.source})" for r in rows)
    return (
        f"the plan's GPU prices mix price bases: {listed}; a difference between them may be the basis, not the hardware "
        "(set pricing.provider for one basis)"
    )
