"""Issue 19: power sampled with NVML during calibrate run --power, and the step-power model fitted on it."""

from __future__ import annotations

import copy
import itertools
import time
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import assert_input_error, cli

from planner import api
from planner.calibrate import microbench, powersample
from planner.calibrate.powerfit import PowerPoint, errors, fit
from planner.domain import Catalog, Workload
from planner.errors import CatalogError, InputError, UnknownIdError
from planner.io.catalog import load_catalog
from planner.io.measurements import read_measurements
from planner.io.power import read_power_factors, read_power_header, read_power_rows
from planner.io.workload import parse_workload, to_domain
from planner.optimize.candidates import enumerate_candidates
from planner.perf.evaluate import busy_steps, make_replica
from planner.perf.power import PowerFactors, busy_steps_power_w, estimate_power_w, gpu_power_w, replica_power_w, step_power_w
from planner.perf.serving import mean_context_tokens

ROOT = Path(__file__).resolve().parent.parent
H200_POWER = ROOT / "catalogs" / "measurements" / "h200-power" / "measurements.csv"
INFO = {"gpu_name": "fake", "driver": "0", "torch": "0", "cuda": "0"}


# --- sampler -----------------------------------------------------------------------------------


def test_summarize_drops_the_settling_samples() -> None:
    samples = [(0.0, 100.0), (0.2, 300.0), (0.6, 500.0), (0.8, 520.0), (1.0, 510.0)]
    r = powersample.summarize(samples, settle_s=0.5)
    assert r.mean_w == pytest.approx(510.0)
    assert r.peak_w == 520.0
    assert r.samples == 3
    assert r.seconds == pytest.approx(0.4)
    # fewer than two samples after settling: all of them count
    assert powersample.summarize([(0.0, 10.0), (0.6, 30.0)], settle_s=0.5).mean_w == pytest.approx(20.0)
    with pytest.raises(InputError, match="no samples"):
        powersample.summarize([])


def test_sampler_polls_in_the_background_at_its_rate() -> None:
    counter = itertools.count()
    sampler = powersample.PowerSampler(lambda: 200.0 + next(counter) % 2 * 100.0, hz=100.0)
    replays = []
    reading = powersample.sustain(
        lambda: (replays.append(1), time.sleep(0.01)), lambda: None, 0.01, sampler, seconds=0.3, settle_s=0.1
    )
    assert len(replays) >= 40  # (seconds + settle) / step, back to back
    assert 10 <= reading.samples <= 40  # ~100 Hz over the 0.3 s after settling
    assert 200.0 <= reading.mean_w <= 300.0 and reading.peak_w == 300.0


def test_sampler_surfaces_a_reader_failure() -> None:
    def broken() -> float:
        raise RuntimeError("NVML_ERROR_GPU_IS_LOST")

    sampler = powersample.PowerSampler(broken, hz=50.0)
    sampler.start()
    time.sleep(0.05)
    with pytest.raises(InputError, match="GPU_IS_LOST"):
        sampler.stop()
    with pytest.raises(InputError, match="positive"):
        powersample.PowerSampler(lambda: 1.0, hz=0.0)


def test_idle_reading() -> None:
    r = powersample.idle(powersample.PowerSampler(lambda: 79.0, hz=50.0), seconds=0.2)
    assert r.mean_w == 79.0 and r.samples >= 3


class FakeNvml:
    """The pynvml calls nvml_reader makes, with milliwatt readings."""

    NVML_FI_DEV_POWER_INSTANT = 186

    def __init__(self, instant_ok: bool = True) -> None:
        self.instant_ok = instant_ok
        self.inited = False

    def nvmlInit(self) -> None:
        self.inited = True

    def nvmlDeviceGetHandleByIndex(self, index: int) -> str:
        return f"gpu{index}"

    def nvmlSystemGetNVMLVersion(self) -> bytes:
        return b"13.580.159.04"

    def nvmlSystemGetDriverVersion(self) -> str:
        return "580.159.04"

    def nvmlDeviceGetEnforcedPowerLimit(self, handle: str) -> int:
        return 700_000

    def nvmlDeviceGetPowerUsage(self, handle: str) -> int:
        return 95_050

    def nvmlDeviceGetFieldValues(self, handle: str, ids: list[int]) -> list[SimpleNamespace]:
        assert ids == [186]
        return [SimpleNamespace(nvmlReturn=0 if self.instant_ok else 3, valueType=1, value=SimpleNamespace(uiVal=78_990))]


def test_nvml_reader_prefers_the_instant_field() -> None:
    fake = FakeNvml()
    dev = powersample.nvml_reader(0, fake)
    assert fake.inited and dev.field == "instant"
    assert dev.read_w() == pytest.approx(78.99)
    assert dev.nvml_version == "13.580.159.04" and dev.driver == "580.159.04" and dev.power_limit_w == 700.0


def test_nvml_reader_falls_back_to_the_averaged_reading() -> None:
    dev = powersample.nvml_reader(0, FakeNvml(instant_ok=False))
    assert dev.field == "average" and dev.read_w() == pytest.approx(95.05)


def test_power_probe_drives_the_sampler() -> None:
    probe = microbench.power_probe(lambda: 450.0, hz=100.0, seconds=0.1, settle_s=0.02)
    calls = []
    r = probe(lambda: calls.append(1), lambda: None, 0.001)
    assert r.mean_w == 450.0 and len(calls) > 50


# --- the CSV -----------------------------------------------------------------------------------


def test_power_columns_round_trip(tmp_path: Path) -> None:
    rows = [
        microbench.Row(
            phase="prefill",
            model="llama-3.1-8b",
            batch=1,
            tokens=512,
            context_tokens=0,
            latency_ms=13.2,
            power_mean_w=686.7,
            power_peak_w=764.0,
            power_samples=41,
        ),
        microbench.Row(phase="decode", model="llama-3.1-8b", batch=8, tokens=0, context_tokens=2048, latency_ms=5.3),
    ]
    path = tmp_path / "m.csv"
    header: dict[str, str | float] = {"idle_w": 79.0, "nvml": "13.580.159.04", "power_limit_w": 700.0}
    path.write_text(microbench.csv_text(rows, "h200-sxm", INFO, {"llama-3.1-8b": 32}, header))
    assert len(read_measurements(path)) == 2  # the step reader ignores the power columns
    got = read_power_rows(path)
    assert len(got) == 1 and got[0].mean_w == 686.7 and got[0].peak_w == 764.0 and got[0].samples == 41
    assert got[0].step.tokens == 512
    assert read_power_header(path) == {"idle_w": "79.0", "nvml": "13.580.159.04", "power_limit_w": "700.0"}
    # without power, the CSV is the old one
    plain = microbench.csv_text(rows[1:], "h200-sxm", INFO, {"llama-3.1-8b": 32})
    assert "power" not in plain


def test_old_csvs_stay_readable() -> None:
    old = ROOT / "catalogs" / "measurements" / "h200-torch" / "measurements.csv"
    assert read_power_rows(old) == [] and read_power_header(old) == {}
    assert len(read_measurements(H200_POWER)) == 72


def test_bad_power_cell(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_text(
        "phase,model,gpu,tp,batch,tokens,context_tokens,precision,latency_ms,engine,power_mean_w,power_peak_w,power_samples\n"
        "decode,llama-3.1-8b,h200-sxm,1,1,0,512,bf16,4.7,x,500,400,10\n"
    )
    with pytest.raises(InputError, match="at most power_peak_w"):
        read_power_rows(path)


# --- the model and its fit ---------------------------------------------------------------------


def test_step_power_is_capped_and_scales_with_busy_time() -> None:
    f = PowerFactors(gpu="g", idle_w=80.0, active_w=100.0, flop_w=1000.0, hbm_w=400.0, cap_w=690.0)
    assert step_power_w(f, 0.0, 0.5) == pytest.approx(380.0)
    assert step_power_w(f, 0.7, 0.1) == 690.0
    est = SimpleNamespace(mfu_frac=0.0, mbu_frac=0.5)
    assert replica_power_w(f, est, 0.5) == pytest.approx(230.0)  # type: ignore[arg-type]
    assert replica_power_w(f, est, 0.0) == 80.0  # type: ignore[arg-type]


def _point(mfu: float, mbu: float, watts: float, phase: str = "decode") -> PowerPoint:
    return PowerPoint(phase, "m", "bf16", 1, 0, 0.0, mfu, mbu, watts)


def test_fit_recovers_known_factors_with_censored_rows() -> None:
    gpu = api.load_catalog(()).gpus["h200-sxm"]
    truth = PowerFactors(gpu="h200-sxm", idle_w=80.0, active_w=100.0, flop_w=1200.0, hbm_w=400.0, cap_w=690.0)
    grid = [(mfu, mbu) for mfu in (0.0, 0.05, 0.1, 0.2, 0.4, 0.6) for mbu in (0.2, 0.5, 0.8)]
    pts = [_point(mfu, mbu, step_power_w(truth, mfu, mbu)) for mfu, mbu in grid]
    got = fit(pts, gpu=gpu, idle_w=80.0, power_limit_w=700.0)
    assert got.capped > 0
    f = got.factors
    assert (f.active_w, f.flop_w, f.hbm_w, f.cap_w) == pytest.approx((100.0, 1200.0, 400.0, 690.0), rel=1e-6)
    assert got.worst_abs_error_frac < 1e-9
    with pytest.raises(ValueError, match="below the power limit"):
        fit([_point(0.6, 0.1, 695.0)] * 5, gpu=gpu, idle_w=80.0, power_limit_w=700.0)


def _h200_points() -> tuple[list[PowerPoint], dict[str, str]]:
    from planner.calibrate.powerfit import achieved

    catalog = api.load_catalog(())
    gpu = catalog.gpus["h200-sxm"]
    rows = read_power_rows(H200_POWER)
    return [achieved(r, catalog.models[r.step.model], api.hardware(catalog, gpu, 1)) for r in rows], read_power_header(H200_POWER)


def test_measured_h200_power() -> None:
    pts, header = _h200_points()
    assert len(pts) == 72 and float(header["idle_w"]) == pytest.approx(79.0, abs=10)
    prefill = [p.mean_w for p in pts if p.phase == "prefill" and p.tokens * p.batch >= 512]
    assert min(prefill) > 660  # prefill runs at the 700 W limit
    dec = {(p.model, p.precision, p.batch): p.mean_w for p in pts if p.phase == "decode"}
    assert dec[("llama-3.1-8b", "bf16", 1)] < dec[("llama-3.1-8b", "bf16", 32)] < dec[("llama-3.1-8b", "bf16", 128)]
    assert dec[("llama-3.1-8b", "fp8", 1)] < dec[("llama-3.1-8b", "bf16", 1)]  # fewer bytes/s at batch 1


def test_shipped_factors_are_rederived_and_hold_out() -> None:
    catalog = api.load_catalog(())
    gpu = catalog.gpus["h200-sxm"]
    pts, header = _h200_points()
    idle, limit = float(header["idle_w"]), float(header["power_limit_w"])
    shipped = read_power_factors(ROOT / "catalogs" / "power.yaml")["h200-sxm"]
    full = fit(pts, gpu=gpu, idle_w=idle, power_limit_w=limit).factors
    for name in ("idle_w", "active_w", "flop_w", "hbm_w", "cap_w"):
        assert getattr(shipped, name) == pytest.approx(getattr(full, name), abs=0.06), name
    assert shipped.source in catalog.sources
    train = fit([p for p in pts if p.model == "llama-3.1-8b"], gpu=gpu, idle_w=idle, power_limit_w=limit)
    held = abs(errors(train.factors, [p for p in pts if p.model != "llama-3.1-8b"]))
    assert float(sorted(held)[len(held) // 2]) < 0.02 and float(held.max()) < 0.10


# --------------------------------------------------------------------------- wired into the core

H200_CHAT = {
    "model": "llama-3.1-70b",
    "classes": [
        {
            "name": "chat",
            "rate_rps": 4.0,
            "input_tokens": {"mean": 2000, "p50": 1500, "p90": 4000, "p99": 7000},
            "output_tokens": {"mean": 300, "p50": 250, "p90": 600, "p99": 1000},
            "slo": {"ttft_p99_ms": 1000, "tpot_p99_ms": 60},
        }
    ],
    "hardware": {"prefill_gpus": ["h200-sxm"], "decode_gpus": ["h200-sxm"], "links": ["ib-ndr-400"]},
}


def _workload(catalog: Catalog, gpu: str = "h200-sxm") -> Workload:
    doc = copy.deepcopy(H200_CHAT)
    doc["hardware"] = {"prefill_gpus": [gpu], "decode_gpus": [gpu], "links": ["ib-ndr-400"]}
    return to_domain(parse_workload(doc, "test"), catalog)


def test_catalog_carries_the_measured_factors(catalog: Catalog) -> None:
    f = catalog.power["h200-sxm"]
    assert f.idle_w == 79.0 and f.cap_w == pytest.approx(691.8)
    assert f.source in catalog.sources
    assert catalog.gpus["h200-sxm"].idle_w is None  # one source of the number: power.yaml
    assert f.transferred_from is None
    assert "a100-sxm-80gb" not in catalog.power  # not measured: the datasheet model


def test_h100_power_factors_are_the_h200s_transferred(catalog: Catalog) -> None:
    h100, h200 = catalog.power["h100-sxm"], catalog.power["h200-sxm"]
    assert h100.transferred_from == "h200-sxm" and h100.gpu == "h100-sxm"
    assert replace(h100, gpu="h200-sxm", transferred_from=None) == h200
    assert read_power_factors(ROOT / "catalogs" / "power.yaml")["h100-sxm"] == h100


def test_transferred_power_factors_are_flagged(catalog: Catalog) -> None:
    result = api.size(_workload(catalog, "h100-sxm"), catalog)
    assert any("h100-sxm: power factors transferred from h200-sxm" in w for w in result.warnings)
    from planner.report.engine import transfer_warnings

    lines = transfer_warnings(catalog, ["h100-sxm", "h200-sxm"], "bf16")
    assert any("h100-sxm has no power measurements of its own" in w and "h200-sxm" in w for w in lines)
    assert not any(w.startswith("h200-sxm") for w in lines)
    measured = api.size(_workload(catalog), catalog)
    assert not any("power factors transferred" in w for w in measured.warnings)


def test_the_power_writer_keeps_the_transferred_entries() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("power_accuracy", ROOT / "bench" / "power_accuracy.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.TRANSFERRED in (ROOT / "catalogs" / "power.yaml").read_text(encoding="utf-8")


def test_h200_plan_power_comes_from_its_steps(catalog: Catalog) -> None:
    workload = _workload(catalog)
    result = api.size(workload, catalog)
    ev = result.plan.evaluation
    f = catalog.power["h200-sxm"]
    (cls,) = workload.classes
    roles = set()
    busy: dict[str, float] = {}
    for pr in ev.pools:
        p = pr.pool
        assert p.gpu == "h200-sxm"
        roles.add(p.role)
        rep = make_replica(catalog, workload, p.gpu, p.tp)
        assert rep is not None
        if p.role == "prefill":
            steps = [rep.prefill_step(L) for L in cls.input_tokens.grid]
            busy_w = sum(estimate_power_w(f, s) * s.latency_s for s in steps) / sum(s.latency_s for s in steps)
        else:
            busy_w = estimate_power_w(f, rep.decode_step(p.max_batch, mean_context_tokens(cls)))
        assert f.idle_w < busy_w <= f.cap_w
        busy[p.role] = busy_w
        expected = p.num_gpus * (f.idle_w + (busy_w - f.idle_w) * pr.utilization_frac)
        assert pr.power_w == pytest.approx(expected, rel=1e-9)
        assert pr.power_w < p.num_gpus * catalog.gpus["h200-sxm"].tdp_w
    assert roles == {"prefill", "decode"}
    assert ev.power_w == pytest.approx(sum(pr.power_w for pr in ev.pools), rel=1e-12)
    assert busy["prefill"] == pytest.approx(f.cap_w, rel=0.02)  # 2K-token prompts of a 70B run at the power limit


def test_h200_candidates_carry_the_measured_coefficients(catalog: Catalog) -> None:
    workload = _workload(catalog)
    f = catalog.power["h200-sxm"]
    cands = enumerate_candidates(catalog, workload, ("prefill", "decode"), {"prefill": ("h200-sxm",), "decode": ("h200-sxm",)})
    assert cands
    for c in cands:
        rep = make_replica(catalog, workload, c.pool.gpu, c.pool.tp)
        assert rep is not None
        assert c.idle_w_per_replica == c.pool.tp * f.idle_w
        for name in c.busy_s:
            cls = next(k for k in workload.classes if k.name == name)
            busy_w = busy_steps_power_w(f, busy_steps(rep, c.pool, cls))
            assert c.dynamic_w(name) == pytest.approx(c.pool.tp * (busy_w - f.idle_w), rel=1e-12)


def test_gpus_without_factors_keep_the_datasheet_model(catalog: Catalog) -> None:
    workload = _workload(catalog, "b200")
    ev = api.size(workload, catalog).plan.evaluation
    for pr in ev.pools:
        gpu = catalog.gpus[pr.pool.gpu]
        assert pr.power_w == pr.pool.num_gpus * gpu_power_w(gpu, pr.pool.role, pr.utilization_frac)
    # and H200 without its factors falls back to the same formula (TDP idle: idle_w is null)
    bare = replace(catalog, power={})
    workload = _workload(bare)
    ev = api.size(workload, bare).plan.evaluation
    for pr in ev.pools:
        gpu = bare.gpus[pr.pool.gpu]
        assert pr.power_w == pr.pool.num_gpus * gpu_power_w(gpu, pr.pool.role, pr.utilization_frac)
        assert pr.power_w == pr.pool.num_gpus * gpu.tdp_w


POWER_OVERLAY = """\
schema_version: 1
gpus:
  h100-sxm:
    idle_w: 70.0
    active_w: 90.0
    flop_w: 1100.0
    hbm_w: 400.0
    cap_w: {cap}
    source: {source}
    as_of: "2026-12-02"
    measured_on: somewhere.csv
"""


def _text(cap: str, source: str) -> str:
    return POWER_OVERLAY.format(cap=cap, source=source)


def _overlay(tmp_path: Path, cap: str = "690.0", source: str = "planner-h200-power-2026-12") -> Path:
    d = tmp_path / "cat"
    d.mkdir(parents=True)
    (d / "power.yaml").write_text(_text(cap, source))
    return d


def test_power_overlay_adds_a_gpu(tmp_path: Path) -> None:
    cat = load_catalog([_overlay(tmp_path)])
    assert cat.power["h100-sxm"].idle_w == 70.0 and "h200-sxm" in cat.power
    assert cat.origin["power:h100-sxm"] == str(tmp_path / "cat" / "power.yaml")


def test_malformed_power_overlay_is_one_error(tmp_path: Path) -> None:
    d = _overlay(tmp_path, cap="lots")
    path = d / "power.yaml"
    line = POWER_OVERLAY.splitlines().index("    cap_w: {cap}") + 1
    assert_input_error(cli("catalog", "validate", "--catalog-dir", str(d)), f"{path}:{line}:", "gpus.h100-sxm.cap_w")


def test_power_overlay_names_known_gpus_and_sources(tmp_path: Path) -> None:
    d = _overlay(tmp_path / "a", source="no-such-source")
    with pytest.raises(CatalogError, match="no-such-source"):
        load_catalog([d])
    d = tmp_path / "b"
    d.mkdir()
    (d / "power.yaml").write_text(_text("690.0", "planner-h200-power-2026-12").replace("h100-sxm", "h900"))
    with pytest.raises(UnknownIdError, match=r"power\.yaml: gpus\.h900: unknown GPU id"):
        load_catalog([d])


TRANSFER_OVERLAY = """\
schema_version: 1
gpus:
  {gpu}:
    transferred_from: {donor}
{rest}"""


@pytest.mark.parametrize(
    ("rest", "message"),
    [
        ("", "needs a note"),
        ("    note: because\n    idle_w: 70.0\n", "no factors of its own"),
        ("    note: because\n    measured_on: x.csv\n", "no factors of its own"),
    ],
)
def test_a_transferred_power_entry_is_a_note_and_nothing_else(tmp_path: Path, rest: str, message: str) -> None:
    d = tmp_path / "cat"
    d.mkdir()
    (d / "power.yaml").write_text(TRANSFER_OVERLAY.format(gpu="a100-sxm-80gb", donor="h200-sxm", rest=rest))
    with pytest.raises(InputError, match=message):
        load_catalog([d])


def test_a_transferred_power_entry_needs_a_fitted_donor(tmp_path: Path) -> None:
    d = tmp_path / "cat"
    d.mkdir()
    (d / "power.yaml").write_text(TRANSFER_OVERLAY.format(gpu="a100-sxm-80gb", donor="h100-sxm", rest="    note: x\n"))
    with pytest.raises(CatalogError, match="no fitted power entry"):
        load_catalog([d])
    (d / "power.yaml").write_text(TRANSFER_OVERLAY.format(gpu="a100-sxm-80gb", donor="h200-sxm", rest="    note: x\n"))
    cat = load_catalog([d])
    assert cat.power["a100-sxm-80gb"].transferred_from == "h200-sxm"
    assert cat.power["a100-sxm-80gb"].cap_w == cat.power["h200-sxm"].cap_w
