"""MoE serving factors (planner/calibrate/moe_fit.py, the moe_serving block of catalogs/efficiency/<engine>.yaml):
the fit recovers known factors, the committed factors reproduce the errors they were written with, and they
change MoE models only."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from planner import api
from planner.calibrate.engine_fit import ServeCase
from planner.calibrate.moe_fit import (
    HELD_OUT_GPUS,
    MOE_PARAMS,
    DisaggCase,
    case_errors,
    factors_of,
    fit_moe,
    predict,
    split_of,
    summary,
    without_moe,
)
from planner.domain import Catalog, MoeServing, ServingMeasurement
from planner.errors import InputError
from planner.io.catalog import select_engine
from planner.io.efficiency import validate_efficiency_doc, write_moe_serving
from planner.io.silicon import corrected_layout, read_silicon, with_corrected_layouts

REPO = Path(__file__).resolve().parent.parent
SILICON_MOE = REPO / "catalogs" / "measurements" / "aiconfigurator" / "silicon_sample_moe.csv"
ENGINES = ("vllm", "sglang", "trtllm")


def _row(i: int, isl: int, osl: int, c: int, mode: str = "agg", workers: tuple[int, int] = (1, 1)) -> ServingMeasurement:
    return ServingMeasurement(
        id=str(i), engine="sglang", engine_version="", raw_model="x", model="deepseek-v3", raw_gpu="b200_sxm",
        gpu="b200", precision="fp8", mode=mode, isl=isl, osl=osl, concurrency=c, tp=8, pp=1, attention_dp=1,
        moe_ep=8, prefill_tp=8, prefill_workers=workers[0], decode_tp=8, decode_workers=workers[1], ttft_s=1.0,
        tpot_s=1.0, origin=f"x:{i}", workers_given=mode == "disagg", prefill_moe_ep=8, decode_moe_ep=8,
    )  # fmt: skip


def _moe_rows(catalog: Catalog) -> list[ServingMeasurement]:
    rows, _ = with_corrected_layouts(read_silicon(SILICON_MOE, catalog.models))
    return [r for r in rows if r.model is not None and catalog.models[r.model].is_moe]


def test_fit_recovers_known_factors_from_synthetic_rows(catalog: Catalog) -> None:
    """Rows made by the serving model with known MoE factors (aggregated and disaggregated) are fitted back."""
    cat = select_engine(without_moe(catalog), "sglang")
    truth = MoeServing(compute_frac_scale=0.6, memory_frac_scale=0.85, decode_fixed_s=2e-3, request_fixed_s=0.08)
    model, gpu = cat.models["deepseek-v3"], cat.gpus["b200"]
    rep = api.serve_replica(cat, model, gpu, 8, "fp8", moe_ep=8)
    cases: list[ServeCase | DisaggCase] = []
    shapes = [(1024, 1024, 1), (1024, 1024, 16), (8192, 1024, 8), (1024, 8192, 64), (4096, 512, 32), (1024, 1024, 128)]
    for i, (isl, osl, c) in enumerate(shapes):
        cases.append(ServeCase(measurement=_row(i, isl, osl, c), replica=rep))
    for i, (isl, osl, c, w) in enumerate([(1024, 1024, 64, (1, 1)), (8192, 1024, 32, (2, 1))]):
        cases.append(DisaggCase(measurement=_row(10 + i, isl, osl, c, "disagg", w), prefill=rep, decode=rep))
    synthetic: list[ServeCase | DisaggCase] = []
    for case in cases:
        ttft, tpot = predict(case, truth)
        synthetic.append(replace(case, measurement=replace(case.measurement, ttft_s=ttft, tpot_s=tpot)))
    got = fit_moe(synthetic)
    for name in MOE_PARAMS:
        assert getattr(got.factors, name) == pytest.approx(getattr(truth, name), rel=2e-2), name
    assert max(abs(e.tpot_rel_error) for e in got.errors) < 1e-3
    assert max(abs(e.ttft_rel_error) for e in got.errors if e.mode == "agg") < 1e-3


def _committed(engine: str) -> dict[str, object]:
    doc = yaml.safe_load((REPO / "catalogs" / "efficiency" / f"{engine}.yaml").read_text())
    block = doc["moe_serving"]
    assert isinstance(block, dict)
    return block


@pytest.mark.parametrize("engine", ENGINES)
def test_committed_factors_reproduce_their_errors(catalog: Catalog, engine: str) -> None:
    """The shipped factors, evaluated on the committed rows, give the training and held-out errors written beside
    them (what bench/fit_moe_serving.py printed), and they are the ones the catalog loads."""
    block = _committed(engine)
    moe = catalog.engine_efficiency[engine]["h100-sxm"].moe_serving
    assert moe is not None
    assert {n: getattr(moe, n) for n in MOE_PARAMS} == {n: block[n] for n in MOE_PARAMS}
    assert "silicon_sample_moe.csv" in moe.fitted_on and "training split" in moe.fitted_on
    cat = select_engine(without_moe(catalog), engine)
    cases, _skipped = api.moe_serving_cases(_moe_rows(catalog), cat)
    errors = block["errors"]
    assert isinstance(errors, dict)
    for split, key in (("train", "train"), ("held-out", "held_out")):
        group = [c for c in cases if split_of(c.measurement) == split]
        n, ttft, tpot = summary(case_errors(group, moe))
        want = errors[key]
        assert n == want["rows"], split
        assert ttft == pytest.approx(want["ttft_median_abs_error_frac"], abs=6e-5), split
        assert tpot == pytest.approx(want["tpot_median_abs_error_frac"], abs=6e-5), split


@pytest.mark.slow
@pytest.mark.parametrize("engine", ENGINES)
def test_refit_gives_the_committed_factors(catalog: Catalog, engine: str) -> None:
    """Refitting the training split (never the H200 rows) gives the shipped values."""
    block = _committed(engine)
    cat = select_engine(without_moe(catalog), engine)
    cases, _ = api.moe_serving_cases(_moe_rows(catalog), cat)
    train = [c for c in cases if split_of(c.measurement) == "train"]
    assert train and all(c.measurement.gpu not in HELD_OUT_GPUS for c in train)
    got = fit_moe(train)
    for name in MOE_PARAMS:
        want = block[name]
        assert isinstance(want, float)
        assert getattr(got.factors, name) == pytest.approx(want, rel=1e-3, abs=1e-7), name


def test_dense_models_are_unchanged(catalog: Catalog) -> None:
    """MoE factors leave a dense model's factors (the very object) and its serving prediction as they were."""
    for engine in ENGINES:
        eff = catalog.engine_efficiency[engine]["h100-sxm"]
        assert eff.moe_serving is not None
        assert eff.for_model(catalog.models["llama-3.1-70b"]) is eff
    req = api.ServeRequest(model="llama-3.1-70b", gpu="h100-sxm", tp=4, isl=2000, osl=300, concurrency=16, engine="sglang")
    with_moe = api.estimate_serve(req, catalog=catalog)
    dense = api.estimate_serve(req, catalog=without_moe(catalog))
    assert with_moe.point == dense.point


def test_moe_models_get_the_factors_and_name_them(catalog: Catalog) -> None:
    req = api.ServeRequest(
        model="deepseek-v3", gpu="h200-sxm", tp=8, moe_ep=8, isl=1024, osl=1024, concurrency=16, engine="sglang",
        precision="fp8",
    )  # fmt: skip
    got = api.estimate_serve(req, catalog=catalog)
    base = api.estimate_serve(req, catalog=without_moe(catalog))
    assert got.point.tpot.mean_s != base.point.tpot.mean_s
    eff = got.replicas[0][3]
    assert eff.moe_serving is None and "moe_serving: " in eff.for_precision("fp8").fitted_on
    moe = catalog.engine_efficiency["sglang"]["h200-sxm"].moe_serving
    assert moe is not None
    dense = catalog.engine_efficiency["sglang"]["h200-sxm"].for_precision("fp8")
    assert eff.for_precision("fp8").memory_frac == pytest.approx(dense.memory_frac * moe.memory_frac_scale)


def test_catalog_show_names_the_moe_factors(catalog: Catalog) -> None:
    from planner.report.engine import engine_show_data

    m = engine_show_data(catalog, "trtllm")["moe_serving"]
    assert m is not None and m["fitted_on"].startswith("catalogs/measurements/aiconfigurator/silicon_sample_moe.csv")
    assert m["compute_frac_scale"] == _committed("trtllm")["compute_frac_scale"]


def test_factors_apply_once(catalog: Catalog) -> None:
    """The applied set carries no factors to apply again, and every precision's set gets them."""
    moe = factors_of([0.5, 0.9, 1e-3, 0.1], fitted_on="x")
    assert (moe.compute_frac_scale, moe.memory_frac_scale, moe.decode_fixed_s, moe.request_fixed_s) == (0.5, 0.9, 1e-3, 0.1)
    ds = catalog.models["deepseek-v3"]
    dense = replace(catalog.engine_efficiency["trtllm"]["b200"], moe_serving=moe)
    once = dense.for_model(ds)
    assert once.for_model(ds) is once
    for name in ("fp8", "fp4"):
        base, got = getattr(dense, name), getattr(once, name)
        assert got.compute_frac == pytest.approx(0.5 * base.compute_frac)
        assert got.decode_fixed_s == pytest.approx(base.decode_fixed_s + 1e-3) and got.request_fixed_s == 0.1


def test_moe_block_needs_the_engine_and_sane_values(tmp_path: Path) -> None:
    block = {
        "compute_frac_scale": 0.5, "memory_frac_scale": 0.9, "decode_fixed_s": 1e-3, "fitted_on": "rows",
        "source": "aiconfigurator-core-0-12-0", "as_of": "2026-12-02",
    }  # fmt: skip
    validate_efficiency_doc({"schema_version": 1, "engine": "vllm", "efficiency": {}, "moe_serving": block})
    with pytest.raises(InputError, match="moe_serving"):
        validate_efficiency_doc({"schema_version": 1, "efficiency": {}, "moe_serving": block})
    with pytest.raises(InputError, match="compute_frac_scale"):
        validate_efficiency_doc(
            {"schema_version": 1, "engine": "vllm", "efficiency": {}, "moe_serving": {**block, "compute_frac_scale": -1}}
        )


def test_write_moe_serving_replaces_only_its_block(tmp_path: Path) -> None:
    src = (REPO / "catalogs" / "efficiency" / "vllm.yaml").read_text()
    head = src.split("moe_serving:")[0]
    target = tmp_path / "vllm.yaml"
    target.write_text(src)
    entry = {**_committed("vllm"), "decode_fixed_s": 0.00123}
    write_moe_serving(target, entry)
    out = target.read_text()
    assert out.startswith(head) and out.count("moe_serving:") == 1
    assert yaml.safe_load(out)["moe_serving"]["decode_fixed_s"] == 0.00123


def test_layout_correction_is_what_the_twins_measured(catalog: Catalog) -> None:
    """Every corrected row that the file also holds under another layout (same engine, model, system, precision,
    ISL/OSL, same measured TTFT and TPOT) has exactly the corrected layout there; legal layouts are left alone."""
    rows = read_silicon(SILICON_MOE, catalog.models)
    fixed = {id(r): f for r in rows if (f := corrected_layout(r)) is not None}
    assert len(fixed) == 231

    def key(r: ServingMeasurement) -> tuple[object, ...]:
        return (r.engine, r.raw_model, r.raw_gpu, r.precision, r.mode, r.isl, r.osl, r.ttft_s, r.tpot_s)

    twins = 0
    for r in rows:
        f = fixed.get(id(r))
        if f is None:
            continue
        assert f.layout()[0] in (4, 8) and f.moe_tp == 1 and f.moe_ep == f.layout()[0]
        others = [o for o in rows if key(o) == key(r) and id(o) not in fixed]
        twins += bool(others)
        assert all(o.layout() == f.layout() for o in others)
    assert twins == 43
    legal = [r for r in rows if r.mode == "agg" and r.moe_tp == 2 and r.moe_ep == 2]  # 4 GPUs, MoE TP 2 x EP 2
    assert legal and all(corrected_layout(r) is None for r in legal)
    assert all(corrected_layout(r) is None for r in rows if r.mode == "disagg")
