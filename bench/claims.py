"""What the planner says about the seed claims of disaggregated serving (issue 19, item 4).

    python bench/claims.py [--markdown] [--jobs 2]

Sizes the example workloads (examples/workloads/*.yaml) and a grid of one-class Llama-3.1-70B
workloads (fixed prompt/output lengths x TPOT targets, at 5 and 40 requests/s, TTFT p99 2 s, every catalog GPU
allowed, on-demand prices) with ``planner.api.size``, and compares each disaggregated plan with the
best co-located baseline of the same result (the cheapest feasible ``colocated-*`` baseline, the one
``savings_frac`` is computed against). Nothing is tuned: the workloads are sized as they are. For each
claim it prints the planner's figure as min / median / max and the workloads where the claim holds
and where it does not:

* cost, "15-40 % lower": ``savings_frac`` = 1 - plan USD/h / baseline USD/h (the workload's pricing);
  holds when it lies in [15 %, 40 %].
* GPU utilization, "40-60 % higher": not one figure in the result; computed as the GPU-weighted mean
  busy fraction of the pools (sum of ``utilization_frac`` x ``num_gpus`` over sum of ``num_gpus``)
  of the plan over that of the baseline, minus 1; holds in [40 %, 60 %].
* power, "about 50 % lower": 1 - plan ``power_kw`` / baseline ``power_kw`` (both serve the same
  tokens/s, so it is also the energy per token); "about" is taken as [40 %, 60 %].
* server cost, "up to 4x lower": the catalog prices servers for the H100 SXM only, so the figure is
  the GPU count, baseline GPUs / plan GPUs; holds when it is above 1 and at most 4. Where every pool
  of both is on a GPU with server capex, the capex ratio is shown too.

A workload with no feasible plan or no feasible co-located baseline is listed and left out of the
figures. Prints its figures; it is not a test.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from planner import api
from planner.domain import Catalog
from planner.errors import PlannerError
from planner.perf.evaluate import PoolResult

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples" / "workloads").glob("*.yaml"))

MODEL = "llama-3.1-70b"
RATES_RPS = (5.0, 40.0)  # a few replicas (whole-replica rounding shows) and a few tens of GPUs
TTFT_P99_MS = 2000.0
ISL = (256, 1024, 4096, 16384)
OSL = (64, 256, 1024)
TPOT_MS = (30.0, 60.0, 100.0)


@dataclass(frozen=True, slots=True)
class Case:
    name: str
    path: Path | None = None  # an example workload file, or:
    isl: int = 0
    osl: int = 0
    tpot_ms: float = 0.0
    rate_rps: float = 0.0


@dataclass(frozen=True, slots=True)
class Figures:
    name: str
    plan: str  # the plan's pools, e.g. "h100-sxm P4x5 + a100-sxm-80gb D4x5"
    baseline: str  # the best co-located baseline's name
    savings_frac: float
    utilization_plan: float
    utilization_base: float
    power_kw_plan: float
    power_kw_base: float
    gpus_plan: int
    gpus_base: int
    capex_ratio: float | None  # baseline server capex / plan server capex, where both are priced

    @property
    def utilization_gain(self) -> float:
        return self.utilization_plan / self.utilization_base - 1.0

    @property
    def power_saving(self) -> float:
        return 1.0 - self.power_kw_plan / self.power_kw_base

    @property
    def gpu_ratio(self) -> float:
        return self.gpus_base / self.gpus_plan


@dataclass(frozen=True, slots=True)
class Claim:
    name: str
    claimed: str
    figure: str
    value: Callable[[Figures], float]
    low: float  # holds for low <= value <= high (low excluded when low_open)
    high: float
    low_open: bool = False
    pct: bool = True

    def holds(self, f: Figures) -> bool:
        v = self.value(f)
        return (v > self.low if self.low_open else v >= self.low) and v <= self.high

    def fmt(self, v: float) -> str:
        return f"{100 * v:+.1f} %" if self.pct else f"{v:.2f}x"


CLAIMS = (
    Claim("cost", "15-40 % lower", "savings_frac", lambda f: f.savings_frac, 0.15, 0.40),
    Claim("GPU utilization", "40-60 % higher", "utilization gain", lambda f: f.utilization_gain, 0.40, 0.60),
    Claim("power", "about 50 % lower", "1 - power_kw ratio", lambda f: f.power_saving, 0.40, 0.60),
    Claim("server cost", "up to 4x lower", "GPUs base / plan", lambda f: f.gpu_ratio, 1.0, 4.0, low_open=True, pct=False),
)


def cases() -> list[Case]:
    out = [Case(name=p.stem, path=p) for p in EXAMPLES]
    for rate in RATES_RPS:
        for isl in ISL:
            for osl in OSL:
                for tpot in TPOT_MS:
                    name = f"r{rate:g}/isl{isl}/osl{osl}/tpot{tpot:g}"
                    out.append(Case(name=name, isl=isl, osl=osl, tpot_ms=tpot, rate_rps=rate))
    return out


def _mean_utilization(pools: Sequence[PoolResult]) -> float:
    gpus = sum(pr.pool.num_gpus for pr in pools)
    return sum(pr.utilization_frac * pr.pool.num_gpus for pr in pools) / gpus


def _capex(pools: Sequence[PoolResult], catalog: Catalog) -> float | None:
    total = 0.0
    for pr in pools:
        server = next((s for s in catalog.servers if s.gpu == pr.pool.gpu and s.capex_usd is not None), None)
        if server is None or server.capex_usd is None:
            return None
        total += server.capex_usd / server.gpus_per_server * pr.pool.num_gpus
    return total


def _pools(pools: Sequence[PoolResult]) -> str:
    role = {"prefill": "P", "decode": "D", "colocated": "C"}
    return " + ".join(f"{pr.pool.gpu} {role[pr.pool.role]}{pr.pool.tp}x{pr.pool.replicas}" for pr in pools)


def size_case(case: Case) -> Figures | str:
    """The figures of one workload, or why there are none."""
    if case.path is not None:
        spec = api.load_workload_spec(case.path)
        catalog = api.workload_catalog(spec, case.path)  # as `planner size FILE` plans it
        origin = str(case.path)
    else:
        catalog = api.load_catalog()
        spec = api.workload_spec_from_flags(
            model=MODEL,
            rate_rps=case.rate_rps,
            isl=case.isl,
            osl=case.osl,
            ttft_p99_ms=TTFT_P99_MS,
            tpot_p99_ms=case.tpot_ms,
        )
        origin = "flags"
    try:
        workload = api.resolve_workload(spec, catalog, origin)
        result = api.size(workload, catalog)
    except PlannerError as exc:
        return f"no plan ({type(exc).__name__}: {exc.message})"
    colocated = [b for b in result.baselines if b.name.startswith("colocated") and b.solved is not None]
    if not colocated:
        return "no feasible co-located baseline"
    best = min(colocated, key=lambda b: b.solved.evaluation.usd_per_hour if b.solved else float("inf"))
    assert best.solved is not None and result.savings_frac is not None
    plan, base = result.plan.evaluation, best.solved.evaluation
    cp, cb = _capex(plan.pools, catalog), _capex(base.pools, catalog)
    return Figures(
        name=case.name,
        plan=_pools(plan.pools),
        baseline=best.name,
        savings_frac=result.savings_frac,
        utilization_plan=_mean_utilization(plan.pools),
        utilization_base=_mean_utilization(base.pools),
        power_kw_plan=plan.power_w / 1000.0,
        power_kw_base=base.power_w / 1000.0,
        gpus_plan=plan.num_gpus,
        gpus_base=base.num_gpus,
        capex_ratio=cb / cp if cp and cb else None,
    )


def _names(names: list[str], limit: int = 4) -> str:
    if not names:
        return "none"
    shown = ", ".join(names[:limit])
    return shown if len(names) <= limit else f"{shown} and {len(names) - limit} more"


def summary_rows(figs: list[Figures]) -> list[list[str]]:
    rows = []
    for c in CLAIMS:
        values = [c.value(f) for f in figs]
        held = [f.name for f in figs if c.holds(f)]
        below = [f.name for f in figs if not c.holds(f) and c.value(f) <= c.high]
        above = [f.name for f in figs if c.value(f) > c.high]
        verdict = "holds" if len(held) == len(figs) else "does not hold" if not held else "holds in part"
        rows.append(
            [
                f"{c.name}: {c.claimed}",
                c.figure,
                c.fmt(min(values)),
                c.fmt(statistics.median(values)),
                c.fmt(max(values)),
                f"{verdict} ({len(held)}/{len(figs)})",
                _names(held),
                "; ".join(
                    part
                    for part in (
                        f"below the range on {len(below)}" + (f" ({_names(below, 3)})" if below else "") if below else "",
                        f"above it on {len(above)} ({_names(above, 3)})" if above else "",
                    )
                    if part
                )
                or "none",
            ]
        )
    return rows


SUMMARY_HEAD = ["claim", "planner's figure", "min", "median", "max", "verdict (workloads)", "holds on", "does not hold on"]
DETAIL_HEAD = [
    "workload",
    "plan",
    "best co-located",
    "savings",
    "util plan / base",
    "util gain",
    "kW plan / base",
    "power saving",
    "GPUs plan / base",
    "capex ratio",
]


def detail_rows(figs: list[Figures]) -> list[list[str]]:
    def mark(c: Claim, f: Figures) -> str:
        return c.fmt(c.value(f)) + (" *" if c.holds(f) else "")

    cost, util, power, _ = CLAIMS
    return [
        [
            f.name,
            f.plan,
            f.baseline.removeprefix("colocated-"),
            mark(cost, f),
            f"{100 * f.utilization_plan:.0f} / {100 * f.utilization_base:.0f} %",
            mark(util, f),
            f"{f.power_kw_plan:.1f} / {f.power_kw_base:.1f}",
            mark(power, f),
            f"{f.gpus_plan} / {f.gpus_base}" + (" *" if CLAIMS[3].holds(f) else ""),
            "n/a" if f.capex_ratio is None else f"{f.capex_ratio:.2f}x",
        ]
        for f in figs
    ]


def markdown(head: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(cell.replace("|", "/") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def plain(head: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(head, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--markdown", action="store_true", help="print Markdown tables")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    args = parser.parse_args()
    start = time.perf_counter()
    todo = cases()
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        results = list(pool.map(size_case, todo))
    figs = [r for r in results if isinstance(r, Figures)]
    skipped = [(c.name, r) for c, r in zip(todo, results, strict=True) if isinstance(r, str)]
    if not figs:
        sys.exit("no workload had both a plan and a co-located baseline")
    table = markdown if args.markdown else plain
    print(
        f"{len(figs)} workloads ({len(EXAMPLES)} examples, {len(todo) - len(EXAMPLES)} grid points of {MODEL} at "
        f"{' and '.join(f'{r:g}' for r in RATES_RPS)} req/s, TTFT p99 {TTFT_P99_MS:g} ms, ISL {'/'.join(map(str, ISL))} x OSL "
        f"{'/'.join(map(str, OSL))} x TPOT p99 {'/'.join(f'{t:g}' for t in TPOT_MS)} ms); "
        f"{date.today().isoformat()}, {time.perf_counter() - start:.0f} s\n"
    )
    print(table(SUMMARY_HEAD, summary_rows(figs)))
    print("\nper workload (* = the claim holds there):\n")
    rows, head = detail_rows(figs), DETAIL_HEAD
    if all(f.capex_ratio is None for f in figs):  # only the H100 SXM has server capex in the catalog
        rows, head = [r[:-1] for r in rows], head[:-1]
    print(table(head, rows))
    if skipped:
        print("\nleft out:")
        for name, why in skipped:
            print(f"- {name}: {why}")


if __name__ == "__main__":
    main()
