"""Cost of a GPU-hour and of network ports under a pricing mode.

* on-demand: the catalog's default list price for the GPU;
* reserved: that price times ``1 − discount_frac``;
* capex: server capex / (GPUs per server · amortization hours), plus the GPU's average power times
  PUE times the electricity price. NIC ports are priced only here (``port_usd`` amortized the same
  way): cloud instance prices already include their network adapters.
"""

from __future__ import annotations

from planner.domain import Catalog, LinkSpec, Pricing
from planner.errors import InputError
from planner.units import HOURS_PER_MONTH, W_PER_KW

HOURS_PER_YEAR = 12 * HOURS_PER_MONTH


def gpu_usd_per_hour(catalog: Catalog, gpu_id: str, pricing: Pricing, avg_power_w: float) -> float:
    """Price of one GPU-hour of ``gpu_id``; raises :class:`InputError` when no figure exists."""
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
    kwh_price = pricing.usd_per_kwh if pricing.usd_per_kwh is not None else catalog.electricity_usd_per_kwh
    pue = pricing.pue if pricing.pue is not None else catalog.pue
    if kwh_price is None or pue is None:
        raise InputError("capex pricing needs usd_per_kwh and pue (pricing or catalog)")
    capex_per_hour = server.capex_usd / server.gpus_per_server / (years * HOURS_PER_YEAR)
    return capex_per_hour + avg_power_w / W_PER_KW * pue * kwh_price


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
