"""Engine profiles: the serving model of `estimate serve`, the overhead fit on serving measurements,
and the shipped vLLM/SGLang/TRT-LLM profiles (their accuracy figures are in bench/engine_accuracy.py)."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from conftest import Run, assert_input_error

from planner import api
from planner.calibrate.engine_fit import SERVE_PARAMS, ServeCase, fit_serving, predict, set_overheads
from planner.domain import Catalog, ServingMeasurement
from planner.errors import InputError
from planner.io.catalog import select_engine
from planner.io.silicon import read_silicon
from planner.perf.roofline import decode_step, prefill_step

REPO = Path(__file__).resolve().parent.parent
SILICON = REPO / "catalogs" / "measurements" / "aiconfigurator" / "silicon_sample_dense.csv"


def test_one_client_is_one_prefill_and_decode_steps_at_batch_one(catalog: Catalog) -> None:
    """The closed form at concurrency 1: TTFT = the prompt's prefill (+ the engine's latency
    outside the GPU), TPOT = one decode step at batch 1 at the mean context."""
    for engine in ("vllm", "sglang", "trtllm", "splitwise"):
        cat = select_engine(catalog, engine)
        req = api.ServeRequest(model="llama-3.1-8b", gpu="h100-sxm", tp=1, isl=1000, osl=200, concurrency=1)
        r = api.estimate_serve(req, cat)
        eff = cat.efficiency["h100-sxm"]
        hw = api.hardware(cat, cat.gpus["h100-sxm"], 1)
        m = cat.models["llama-3.1-8b"]
        prefill = prefill_step(m, hw, tp=1, precision="bf16", prompt_tokens=1000).latency_s
        decode = decode_step(m, hw, tp=1, precision="bf16", batch=1, context_tokens=1100.0).latency_s
        assert r.point.ttft.mean_s == pytest.approx(prefill + eff.request_fixed_s, rel=1e-9), engine
        assert r.point.tpot.mean_s == pytest.approx(decode, rel=1e-9), engine
        assert r.point.tpot.p99_s == pytest.approx(decode, rel=1e-9)  # nobody else's prompt interferes
        assert r.point.requests_per_s == pytest.approx(1 / (r.point.ttft.mean_s + 199 * decode), rel=1e-6)


def test_concurrency_raises_latency_and_throughput(catalog: Catalog) -> None:
    points = [
        api.estimate_serve(
            api.ServeRequest(model="qwen3-32b", gpu="h100-sxm", tp=4, isl=4096, osl=512, concurrency=c), catalog
        ).point
        for c in (1, 8, 64)
    ]
    assert [p.tpot.mean_s for p in points] == sorted(p.tpot.mean_s for p in points)
    assert [p.ttft.mean_s for p in points] == sorted(p.ttft.mean_s for p in points)
    assert [p.output_tokens_per_s_per_gpu for p in points] == sorted(p.output_tokens_per_s_per_gpu for p in points)
    # Little's law over a client's cycle holds at the fixed point
    for c, p in zip((1, 8, 64), points, strict=True):
        assert p.requests_per_s * (p.ttft.mean_s + 511 * p.tpot.mean_s) == pytest.approx(c, rel=1e-4)


def test_disaggregated_mode(catalog: Catalog) -> None:
    def run(workers: int) -> api.ServeResult:
        return api.estimate_serve(
            api.ServeRequest(
                model="llama-3.1-70b", mode="disaggregated", precision="fp8", isl=4000, osl=500, concurrency=64,
                prefill_gpu="h100-sxm", prefill_tp=4, prefill_workers=workers, decode_gpu="h200-sxm", decode_tp=4,
                decode_workers=2, link="ib-ndr-400",
            ),
            catalog,
        )  # fmt: skip

    one, four = run(1), run(4)
    assert four.point.ttft.mean_s < one.point.ttft.mean_s
    assert four.point.num_gpus == 4 * 4 + 2 * 4
    assert one.point.chunk_frac == 0.0  # no prefill shares a decode iteration


@pytest.mark.slow
def test_engine_changes_serve_results_and_is_named(run_cli: Run) -> None:
    args = ["estimate", "serve", "--model", "meta-llama/Llama-3.1-8B", "--gpu", "h100-sxm", "--isl", "2000", "--osl", "200",
            "-c", "16", "-f", "json"]  # fmt: skip
    docs = {}
    for engine in ("vllm", "sglang", "trtllm", "splitwise"):
        code, out, err = run_cli(*args, "--engine", engine)
        assert code == 0, err
        docs[engine] = json.loads(out)
        assert docs[engine]["inputs"]["engine"]["id"] == engine
        for key in ("mean", "p50", "p99"):
            assert docs[engine]["data"]["ttft_ms"][key] > 0 and docs[engine]["data"]["tpot_ms"][key] > 0
        for key in ("requests_per_s", "output_tokens_per_s_per_gpu", "output_tokens_per_s_per_user"):
            assert docs[engine]["data"][key] > 0
    assert len({d["data"]["tpot_ms"]["mean"] for d in docs.values()}) == 4
    # the 2023 engine is slower per token than today's
    assert docs["splitwise"]["data"]["tpot_ms"]["mean"] > 1.2 * docs["vllm"]["data"]["tpot_ms"]["mean"]


def test_unknown_engine_version_exits_2(run_cli: Run) -> None:
    base = ["estimate", "serve", "--model", "llama-3.1-8b", "--gpu", "h100-sxm", "--isl", "100", "--osl", "10", "-c", "1"]
    assert_input_error(run_cli(*base, "--engine", "vlm"), "vllm")
    assert_input_error(run_cli(*base, "--engine", "vllm@0.1.0"), "0.12.0")


def test_transferred_gpu_is_named(run_cli: Run) -> None:
    code, _, err = run_cli(
        "estimate", "serve", "--model", "llama-3.1-8b", "--gpu", "h100-pcie", "--isl", "500", "--osl", "50", "-c", "4"
    )
    assert code == 0, err
    assert "h100-pcie has no vllm measurements of its own" in err and "h100-sxm" in err


def test_grid_predicts_many_points_and_a_bad_row_names_its_line(run_cli: Run, tmp_path: Path) -> None:
    grid = tmp_path / "grid.csv"
    grid.write_text("isl,osl,concurrency,engine\n1000,100,1,vllm\n1000,100,8,trtllm\n4000,500,32,\n")
    out_file = tmp_path / "out.csv"
    code, _, err = run_cli("estimate", "serve", "--model", "llama-3.1-8b", "--gpu", "h200-sxm", "--grid", str(grid), "-f", "csv",
                             "-o", str(out_file))  # fmt: skip
    assert code == 0, err
    lines = out_file.read_text().splitlines()
    assert len(lines) == 4 and lines[0].startswith("model,engine")
    assert "trtllm@" in lines[2]
    bad = tmp_path / "bad.csv"
    bad.write_text("isl,osl,concurrency\n1000,100,1\n1000,ten,8\n")
    target = tmp_path / "never.csv"
    result = run_cli("estimate", "serve", "--model", "llama-3.1-8b", "--gpu", "h200-sxm", "--grid", str(bad), "-o", str(target))
    assert_input_error(result, f"{bad}:3", "'osl'")
    assert not target.exists()


def test_fit_recovers_known_overheads(catalog: Catalog) -> None:
    """Synthetic measurements made by the serving model with known overheads are fitted back."""
    cat = select_engine(catalog, "trtllm")
    truth = {"prefill_fixed_s": 2e-3, "decode_fixed_s": 2e-3, "decode_per_seq_s": 3e-5, "prefill_sync_frac": 0.4,
             "request_fixed_s": 0.05}  # fmt: skip
    cases = []
    for i, (isl, osl, c, tp) in enumerate([(1000, 200, 1, 1), (1000, 500, 16, 1), (4000, 200, 8, 2), (4000, 1000, 64, 2),
                                           (2000, 300, 32, 4), (8000, 500, 4, 4), (500, 100, 128, 1)]):  # fmt: skip
        rep = api.serve_replica(cat, cat.models["llama-3.1-8b"], cat.gpus["h100-sxm"], tp, "bf16")
        m = ServingMeasurement(
            id=str(i), engine="trtllm", engine_version="", raw_model="x", model="llama-3.1-8b", raw_gpu="h100_sxm",
            gpu="h100-sxm", precision="bf16", mode="agg", isl=isl, osl=osl, concurrency=c, tp=tp, pp=1, attention_dp=1,
            moe_ep=1, prefill_tp=1, prefill_workers=1, decode_tp=1, decode_workers=1, ttft_s=1.0, tpot_s=1.0, origin=f"x:{i}",
        )  # fmt: skip
        case = ServeCase(measurement=m, replica=rep)
        p = predict(case, set_overheads(rep.hw.efficiency.for_precision("bf16"), truth))
        cases.append(replace(case, measurement=replace(m, ttft_s=p.ttft.mean_s, tpot_s=p.tpot.mean_s)))
    got, errs = fit_serving(cases)
    for name in SERVE_PARAMS:
        assert got[name] == pytest.approx(truth[name], rel=2e-2, abs=1e-6), name
    assert max(abs(e.tpot_rel_error) for e in errs) < 1e-3


def test_shipped_profiles_name_their_measurements(catalog: Catalog) -> None:
    for engine in ("vllm", "sglang", "trtllm"):
        doc = yaml.safe_load((REPO / "catalogs" / "efficiency" / f"{engine}.yaml").read_text())
        assert doc["engine"] == engine
        for gpu, entry in doc["efficiency"].items():
            if "transferred_from" in entry:
                assert entry["note"], gpu
                continue
            assert "op tables" in entry["fitted_on"] and "silicon_sample_dense.csv" in entry["fitted_on"], gpu
            assert entry["source"] == "aiconfigurator-core-0-12-0"
        spec = catalog.engines[engine]
        assert spec.version and spec.source in catalog.sources
    assert catalog.engine.id == "vllm"  # the default engine


@pytest.mark.slow
def test_refit_reproduces_the_shipped_vllm_overheads(catalog: Catalog) -> None:
    """Only the training split is fitted on (Llama-3.1-8B, Qwen3-32B); the shipped figures follow."""
    cal = api.calibrate_serving([SILICON], engine="vllm", catalog=catalog)
    shipped = catalog.engine_efficiency["vllm"]["h100-sxm"]
    for name in SERVE_PARAMS:
        assert cal.overheads[name] == pytest.approx(getattr(shipped, name), rel=1e-3, abs=1e-8), name
    assert {e.measurement.model for e in cal.train} <= set(api.TRAINING_MODELS)
    assert all(e.measurement.model not in api.TRAINING_MODELS for e in cal.held_out)
    assert not math.isnan(cal.held_out[0].tpot_rel_error)


def test_silicon_reader_names_the_line(tmp_path: Path, catalog: Catalog) -> None:
    lines = SILICON.read_text().splitlines()
    bad = tmp_path / "s.csv"
    header = lines[0].split(",")
    row = lines[1].split(",")
    row[header.index("isl")] = "many"
    bad.write_text("\n".join([lines[0], lines[1], ",".join(row)]) + "\n")
    with pytest.raises(InputError, match=r"s\.csv:3: column 'isl'"):
        read_silicon(bad, catalog.models)
    rows = read_silicon(SILICON, catalog.models)
    assert len(rows) == 1049
    assert {r.model for r in rows} >= {"llama-3.1-8b", "llama-3.1-70b", "qwen3-32b"}


# --------------------------------------------------------------------------- fp4 (NVFP4)


def test_fp4_is_a_precision_of_blackwell_only(catalog: Catalog, run_cli: Run) -> None:
    """fp4 steps run at the B200's FP4 peak with 4.5-bit weights and an fp8 KV cache; a GPU without
    FP4 tensor cores serves fp4 weights weight-only: bf16 compute and factors, 4.5-bit weight bytes."""
    b200 = catalog.gpus["b200"]
    assert b200.peak_flop_per_s("fp4") == pytest.approx(2 * b200.peak_flop_per_s("fp8"))  # type: ignore[operator]
    assert catalog.gpus["h100-sxm"].peak_flop_per_s("fp4") is None
    m = catalog.models["llama-3.1-70b"]
    fp8 = api.estimate("prefill", model=m.id, gpu="b200", tp=4, tokens=8192, precision="fp8", catalog=catalog)
    fp4 = api.estimate("prefill", model=m.id, gpu="b200", tp=4, tokens=8192, precision="fp4", catalog=catalog)
    assert fp4.step.latency_s < fp8.step.latency_s
    assert fp4.memory.kv_bytes_per_token == fp8.memory.kv_bytes_per_token  # fp8 KV cache either way
    assert fp4.memory.weight_bytes == pytest.approx(fp8.memory.weight_bytes * 0.5625)
    assert catalog.efficiency["b200"].fp4 is not None  # fitted on the engine's nvfp4 GEMM tables
    h100_fp4 = api.estimate("decode", model=m.id, gpu="h100-sxm", tp=4, batch=8, context=1000, precision="fp4", catalog=catalog)
    h100_bf16 = api.estimate("decode", model=m.id, gpu="h100-sxm", tp=4, batch=8, context=1000, precision="bf16", catalog=catalog)
    assert h100_fp4.memory.weight_bytes == pytest.approx(h100_bf16.memory.weight_bytes * 0.5625 / 2)
    assert h100_fp4.step.latency_s < h100_bf16.step.latency_s  # fewer weight bytes, the same bf16 compute
    code, _, err = run_cli(
        "estimate", "prefill", "-m", m.id, "-g", "h100-sxm", "--tp", "4", "--tokens", "1024", "--precision", "fp4"
    )
    assert code == 0 and "served weight-only" in err, err


def test_fp4_factor_set_falls_back_to_fp8(catalog: Catalog) -> None:
    eff = catalog.efficiency["b200"]
    assert eff.for_precision("fp4") is eff.fp4 and eff.precision_set("fp4") == "fp4"
    no_fp4 = replace(eff, fp4=None)
    assert no_fp4.for_precision("fp4") is eff.fp8 and no_fp4.precision_set("fp4") == "fp8"
    bare = replace(eff, fp4=None, fp8=None)
    assert bare.for_precision("fp4") is bare and bare.precision_set("fp4") == "bf16"


def test_silicon_nvfp4_rows_are_fp4(catalog: Catalog) -> None:
    rows = read_silicon(SILICON, catalog.models)
    fp4 = [r for r in rows if r.precision == "fp4"]
    assert fp4 and {r.gpu for r in fp4} == {"b200"}
    cases, skipped = api.serving_cases([r for r in fp4 if r.mode == "agg" and r.engine == "vllm"], catalog)
    assert sum(len(g) for g in cases.values()) > 0
    assert not [why for _r, why in skipped if "precision" in why]
