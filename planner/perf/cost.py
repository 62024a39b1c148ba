"""Cost of a GPU-hour and of network ports under a pricing mode.

* on-demand: the catalog's default list price for the GPU;
* reserved: that price times ``1 − discount_frac``;
* capex: server capex / (GPUs per server · amortization hours), plus the GPU's average power times
  PUE times the electricity price.

A KV link's port (one per prefill GPU and one per decode GPU on the chosen link) is priced in every mode
(:func:`port_bill`, :func:`port_usd_per_hour`): its NIC's share, ``switch_ports_per_port`` switch ports and
``cables_per_port`` cables (a two-tier fat tree: the GPU's leaf port, the leaf's uplink and the spine port it
reaches; a GPU-to-leaf and a leaf-to-spine cable), each part's price per port being its unit price divided by
the ports one unit serves. The capital cost is spread over ``catalog.network.amortization_years`` (a stated
assumption; capex mode takes ``pricing.amortization_years`` first), so the KV fabric is an hourly cost beside
the GPUs whichever way they are paid for. Parts without a public price are named (``PortBill.missing``) and
left out of the sum: such a port is priced low, never silently free.

A GPU-hour is a fixed part (:func:`gpu_fixed_usd_per_hour`: the list, reserved or amortized price,
whatever the GPU does) plus an energy part linear in its average power (:func:`energy_usd_per_hour`,
capex only). The reports price a plan with :func:`gpu_usd_per_hour`; the optimizer's objective is
linear over the same two parts (the fixed part per replica, the energy part as
:func:`energy_usd_per_wh` times its power expression), so one formula prices both.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from planner.domain import Catalog, LinkSpec, NetworkPart, Pricing
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


@dataclass(frozen=True, slots=True, kw_only=True)
class PortPart:
    """One part of a GPU's port: ``quantity`` of its component's ports (a NIC's 1, a switch's 3, a cable's 2)."""

    part: NetworkPart
    component: str | None  # the component id; None where the link names no such part
    name: str
    quantity: int
    usd_per_unit_port: float | None  # the component's price divided by the ports one unit serves
    source: str | None
    as_of: str | None
    note: str | None = None

    @property
    def usd(self) -> float | None:
        """This part's capital cost per GPU port (None: no price read)."""
        return None if self.usd_per_unit_port is None else self.quantity * self.usd_per_unit_port


@dataclass(frozen=True, slots=True, kw_only=True)
class PortBill:
    """The capital cost of one GPU's port on a link: its parts, or the link's all-in ``port_usd``."""

    link: str
    parts: tuple[PortPart, ...]
    override_usd: float | None  # the link's port_usd (a user's all-in figure), which replaces the parts
    override_source: str | None = None

    @property
    def usd(self) -> float:
        """USD per GPU port: the all-in figure, else the sum of the priced parts (unpriced ones left out)."""
        if self.override_usd is not None:
            return self.override_usd
        return sum(p.usd for p in self.parts if p.usd is not None)

    @property
    def missing(self) -> tuple[NetworkPart, ...]:
        """Parts without a price (or not named by the link) when no all-in figure is given."""
        if self.override_usd is not None:
            return ()
        named = {p.part: p for p in self.parts}
        return tuple(part for part in ("nic", "switch", "cable") if part not in named or named[part].usd is None)


def port_bill(link: LinkSpec, catalog: Catalog) -> PortBill:
    """What one GPU's port on ``link`` costs to buy: NIC share + switch ports + cables (two-tier fat tree)."""
    if link.port_usd is not None:
        return PortBill(link=link.id, parts=(), override_usd=link.port_usd, override_source=link.sources.get("port_usd"))
    if link.port is None:
        return PortBill(link=link.id, parts=(), override_usd=None)
    net = catalog.network
    quantity = {"nic": 1, "switch": net.switch_ports_per_port, "cable": net.cables_per_port}
    parts = []
    for part in ("nic", "switch", "cable"):
        ref = getattr(link.port, part)
        c = catalog.network_components.get(ref) if ref is not None else None
        if c is None:
            continue
        parts.append(
            PortPart(
                part=c.part,
                component=c.id,
                name=c.name,
                quantity=quantity[part],
                usd_per_unit_port=c.usd_per_port,
                source=c.source,
                as_of=c.as_of,
                note=c.note,
            )
        )
    return PortBill(link=link.id, parts=tuple(parts), override_usd=None)


def network_amortization_years(pricing: Pricing, catalog: Catalog) -> float | None:
    """Years the network hardware is paid off over: capex mode's ``amortization_years`` first, then the
    catalog's network assumption, then a server's stated years; None where none is given."""
    if pricing.mode == "capex" and pricing.amortization_years is not None:
        return pricing.amortization_years
    if catalog.network.amortization_years is not None:
        return catalog.network.amortization_years
    return next((s.amortization_years for s in catalog.servers if s.amortization_years is not None), None)


def port_usd_per_hour(link: LinkSpec, pricing: Pricing, catalog: Catalog) -> float:
    """Amortized price of one GPU's port on ``link`` per hour, in every pricing mode (0 without amortization years)."""
    years = network_amortization_years(pricing, catalog)
    if years is None:
        return 0.0
    return port_bill(link, catalog).usd / (years * HOURS_PER_YEAR)


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


def port_price_warning(catalog: Catalog, links: Iterable[str]) -> str | None:
    """A warning when the ports of ``links`` are priced without some of their parts (no public price read), naming
    each link and part; None when every part is priced (or the link's all-in ``port_usd`` is given)."""
    gaps = []
    for link_id in sorted(set(links)):
        missing = port_bill(catalog.links[link_id], catalog).missing
        if missing:
            gaps.append(f"{link_id} ({', '.join(missing)})")
    if not gaps:
        return None
    return (
        f"KV link ports priced without the parts that have no public price: {'; '.join(gaps)}; those ports cost more "
        "than the plan says, and a link whose parts are all priced may compare worse than it is (give the parts' "
        "prices, components in a links.yaml of --catalog-dir)"
    )
