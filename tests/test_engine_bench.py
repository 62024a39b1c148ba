"""SGLang bench_one_batch and vLLM bench latency files as calibration input: the readers on files
shaped as those scripts write them, the step mapping against the core's own predictions, the fit
recovering known factors from synthetic engine files, malformed files, and the CLI end to end."""

from __future__ import annotations

import json
import statistics
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from conftest import Run, assert_input_error
from known_factors import TRUE

from planner import api
from planner.calibrate.stepfit import compute_floor_s, decode_runs, fit_gpu, predict_s
from planner.domain import Catalog, Efficiency, Measurement
from planner.errors import InputError
from planner.io.engine_bench import read_sglang_one_batch, read_vllm_latency
from planner.perf.roofline import Hardware, decode_step, prefill_step

DATA = Path(__file__).resolve().parent / "data" / "engine_bench"
SGLANG = DATA / "sglang_bench_one_batch.jsonl"
VLLM = DATA / "vllm_latency.json"
VLLM_PT = DATA / "vllm_latency.pytorch.json"
RUN = {"model": "llama-3.1-8b", "gpu": "h100-sxm", "precision": "bf16"}


def _hw(catalog: Catalog, tp: int, eff: Efficiency = TRUE) -> Hardware:
    g = catalog.gpus["h100-sxm"]
    return Hardware(g, eff, api.hardware(catalog, g, tp).intra_node_bytes_per_s)


# --------------------------------------------------------------------------- the shipped fixtures


def test_sglang_fixture_maps_to_prefill_and_decode_rows() -> None:
    rows = read_sglang_one_batch(SGLANG, tp=1, **RUN)  # type: ignore[arg-type]
    assert [(m.phase, m.batch, m.tokens, m.context_tokens) for m in rows] == [
        ("prefill", 1, 512, 0.0),
        ("decode", 1, 0, 512 + 16 / 2),
        ("prefill", 16, 512, 0.0),
        ("decode", 16, 0, 512 + 16 / 2),
        ("prefill", 1, 2048, 0.0),  # output_len 1: the script writes no decode median
    ]
    assert [m.latency_s for m in rows] == [0.0213175, 0.0064519, 0.1529301, 0.0079125, 0.0789412]  # seconds, as written
    assert [m.origin for m in rows] == [f"{SGLANG}:1", f"{SGLANG}:1", f"{SGLANG}:2", f"{SGLANG}:2", f"{SGLANG}:3"]
    assert {(m.model, m.gpu, m.tp, m.precision) for m in rows} == {("llama-3.1-8b", "h100-sxm", 1, "bf16")}


def test_vllm_output_json_needs_the_shape_from_flags() -> None:
    rows = read_vllm_latency(VLLM, tp=2, batch_size=8, input_len=1024, output_len=128, **RUN)  # type: ignore[arg-type]
    assert len(rows) == 1
    m = rows[0]
    assert (m.phase, m.tp, m.batch, m.tokens, m.output_tokens) == ("batch", 2, 8, 1024, 128)
    assert m.latency_s == 0.9490026  # the median of the five latencies, not avg_latency (0.9492957)
    assert m.origin == str(VLLM)
    with pytest.raises(InputError) as info:
        read_vllm_latency(VLLM, tp=1, batch_size=8, output_len=128, **RUN)  # type: ignore[arg-type]
    assert info.value.message == f"{VLLM}: the file does not record input_len: give --input-len"


def test_vllm_pytorch_format_reads_the_run_arguments() -> None:
    rows = read_vllm_latency(VLLM_PT, **RUN)  # type: ignore[arg-type]
    assert [(m.phase, m.tp, m.batch, m.tokens, m.output_tokens, m.latency_s, m.origin) for m in rows] == [
        ("batch", 1, 8, 1024, 128, 0.9490026, str(VLLM_PT))
    ]
    # a flag that agrees is fine; one that contradicts the recorded argument is an error
    assert read_vllm_latency(VLLM_PT, batch_size=8, tp=1, **RUN) == rows  # type: ignore[arg-type]
    with pytest.raises(InputError) as info:
        read_vllm_latency(VLLM_PT, tp=4, **RUN)  # type: ignore[arg-type]
    assert info.value.message == f"{VLLM_PT}: --tp 4 contradicts the file's tensor_parallel_size 1"


# --------------------------------------------------------------------------- the mapping is the core's


@pytest.mark.parametrize("output_len", [2, 16, 17, 256])
def test_sglang_decode_context_is_the_median_step(catalog: Catalog, tmp_path: Path, output_len: int) -> None:
    """bench_one_batch takes the median over its output_len - 1 decode steps; step i runs over
    input_len + i + 1 tokens. The decode row read from such a line predicts the median of the
    per-step predictions (exactly for an odd number of steps, and for an even number while the
    step time is affine in the context)."""
    model, hw = catalog.models["llama-3.1-8b"], _hw(catalog, 1)
    for batch, input_len in ((1, 512), (32, 2048)):
        steps = [
            decode_step(model, hw, tp=1, precision="bf16", batch=batch, context_tokens=float(input_len + i + 1)).latency_s
            for i in range(output_len - 1)
        ]
        line = {"batch_size": batch, "input_len": input_len, "output_len": output_len, "prefill_latency": 1.0}
        line["median_decode_latency"] = statistics.median(steps)
        path = tmp_path / "result.jsonl"
        path.write_text(json.dumps(line) + "\n")
        (_, decode) = read_sglang_one_batch(path, tp=1, **RUN)  # type: ignore[arg-type]
        assert predict_s(decode, model, hw) == pytest.approx(decode.latency_s, rel=1e-12)


def _brute_force_batch_s(catalog: Catalog, m: Measurement, eff: Efficiency = TRUE) -> float:
    model, hw = catalog.models[m.model], _hw(catalog, m.tp, eff)
    total = prefill_step(model, hw, tp=m.tp, precision=m.precision, prompt_tokens=m.tokens, batch=m.batch).latency_s
    for k in range(1, m.output_tokens):
        total += decode_step(
            model, hw, tp=m.tp, precision=m.precision, batch=m.batch, context_tokens=float(m.tokens + k)
        ).latency_s
    return total


def _batch(model: str, tp: int, batch: int, input_len: int, output_len: int) -> Measurement:
    return Measurement(
        phase="batch",
        model=model,
        gpu="h100-sxm",
        tp=tp,
        batch=batch,
        tokens=input_len,
        context_tokens=0.0,
        output_tokens=output_len,
        precision="bf16",
        latency_s=1.0,
        origin="x",
    )


def test_batch_prediction_is_the_exact_sum_of_its_steps(catalog: Catalog) -> None:
    """prefill + the output_len - 1 decode steps over the growing context, step by step, including
    runs whose decode steps cross from the compute to the memory bound."""
    crossings = 0
    for model, tp in (("llama-3.1-8b", 1), ("llama-2-70b", 4)):
        for batch in (1, 16, 256):
            for input_len, output_len in ((16, 1), (16, 2), (32, 3000), (512, 128), (8, 4000)):
                m = _batch(model, tp, batch, input_len, output_len)
                runs = decode_runs(m, catalog.models[model], _hw(catalog, tp))
                assert sum(n for n, _ in runs) == output_len - 1
                crossings += len(runs) == 2
                assert predict_s(m, catalog.models[model], _hw(catalog, tp)) == pytest.approx(
                    _brute_force_batch_s(catalog, m), rel=1e-9
                ), (model, batch, input_len, output_len)
    assert crossings >= 1  # the two-run branch is exercised, not only the single run


def test_batch_compute_floor_counts_every_step(catalog: Catalog) -> None:
    model, hw = catalog.models["llama-3.1-8b"], _hw(catalog, 1)
    m = _batch("llama-3.1-8b", 1, 8, 1024, 128)
    prefill = replace(m, phase="prefill", context_tokens=0.0)
    decodes = [replace(m, phase="decode", tokens=0, context_tokens=1024.0 + k) for k in range(1, 128)]
    expected = compute_floor_s(prefill, model, hw) + sum(compute_floor_s(d, model, hw) for d in decodes)
    assert compute_floor_s(m, model, hw) == pytest.approx(expected, rel=1e-9)


# --------------------------------------------------------------------------- synthetic files, known factors


def _write_sglang(catalog: Catalog, path: Path, noise: float, seed: int) -> None:
    """What bench_one_batch would write if the core with TRUE factors were the GPU: per run the
    prefill time and the median of the output_len - 1 per-step decode times."""
    rng = np.random.default_rng(seed)
    model, hw = catalog.models["llama-3.1-8b"], _hw(catalog, 1)
    lines = []
    for batch in (1, 4, 16, 64):
        for input_len in (128, 512, 2048, 8192):
            for output_len in (8, 65):
                prefill = prefill_step(model, hw, tp=1, precision="bf16", prompt_tokens=input_len, batch=batch).latency_s
                steps = [
                    decode_step(model, hw, tp=1, precision="bf16", batch=batch, context_tokens=float(input_len + i + 1)).latency_s
                    for i in range(output_len - 1)
                ]
                prefill *= float(np.exp(rng.normal(0.0, noise)))
                median = float(np.median(steps)) * float(np.exp(rng.normal(0.0, noise)))
                total = prefill + sum(steps)
                lines.append(
                    json.dumps(
                        {
                            "run_name": "synthetic",
                            "batch_size": batch,
                            "input_len": input_len,
                            "output_len": output_len,
                            "prefill_latency": prefill,
                            "prefill_throughput": input_len * batch / prefill,
                            "median_decode_latency": median,
                            "median_decode_throughput": batch / median,
                            "total_latency": total,
                            "overall_throughput": (input_len + output_len) * batch / total,
                        }
                    )
                )
    path.write_text("".join(line + "\n" for line in lines))


@pytest.mark.parametrize(("noise", "seed"), [(0.0, 0), (0.01, 3)])
def test_fit_on_sglang_file_recovers_known_factors(catalog: Catalog, tmp_path: Path, noise: float, seed: int) -> None:
    path = tmp_path / "result.jsonl"
    _write_sglang(catalog, path, noise, seed)
    result = api.calibrate([], [], sglang_files=[path], tp=1, folds=0, **RUN)
    f = result.fits["h100-sxm"]
    assert len(f.points) == 64 and not any(pt.excluded for pt in f.points)
    tol = 0.02 if noise == 0 else 0.10
    for p in ("compute_frac", "memory_frac", "decode_per_seq_s"):
        assert getattr(f.efficiency, p) == pytest.approx(getattr(TRUE, p), rel=tol), p
    assert f.efficiency.decode_fixed_s == pytest.approx(TRUE.decode_fixed_s, rel=2 * tol)
    assert float(np.median(f.abs_errors())) < max(2 * noise, 1e-3)
    # TP 1 sees no all-reduce: those two factors stay the catalog's, as with a measurement CSV
    assert f.efficiency.allreduce_latency_s == catalog.efficiency["h100-sxm"].allreduce_latency_s
    assert "result.jsonl: llama-3.1-8b on h100-sxm, TP 1" in f.efficiency.fitted_on


def _write_vllm(catalog: Catalog, directory: Path, noise: float, seed: int) -> list[Path]:
    """vLLM .pytorch.json files (one run each, as the script writes them) whose latencies are the
    step-by-step sum of the core's TRUE prefill and decode steps, at TP 2, 4 and 8 of a 70B model."""
    rng = np.random.default_rng(seed)
    paths = []
    for tp in (2, 4, 8):
        for batch, input_len in ((1, 128), (1, 2048), (1, 8192), (8, 512), (32, 256), (64, 128), (256, 32)):
            for output_len in (2, 32, 256):
                m = _batch("llama-2-70b", tp, batch, input_len, output_len)
                exact = _brute_force_batch_s(catalog, m)
                latencies = [exact * float(np.exp(rng.normal(0.0, noise))) for _ in range(5)]
                args = {
                    "input_len": input_len,
                    "output_len": output_len,
                    "batch_size": batch,
                    "n": 1,
                    "use_beam_search": False,
                    "model": "meta-llama/Llama-2-70b-hf",
                    "tensor_parallel_size": tp,
                    "max_num_batched_tokens": None,
                    "max_num_seqs": None,
                }
                record = {
                    "benchmark": {"name": "vLLM benchmark", "extra_info": {"args": args}},
                    "model": {"name": args["model"]},
                    "metric": {"name": "latency", "benchmark_values": latencies, "extra_info": {}},
                }
                path = directory / f"tp{tp}-b{batch}-i{input_len}-o{output_len}.pytorch.json"
                path.write_text(json.dumps([record]))
                paths.append(path)
    return paths


def test_fit_on_vllm_files_recovers_known_factors(catalog: Catalog, tmp_path: Path) -> None:
    """Whole-batch times at TP 2/4/8 with 1 % noise per iteration: the fit of all eight factors
    reproduces the truth's batch times and its per-step prefill and decode times."""
    paths = _write_vllm(catalog, tmp_path, 0.01, 11)
    result = api.calibrate([], [], vllm_files=paths, model="llama-2-70b", gpu="h100-sxm", precision="bf16", folds=0)
    f = result.fits["h100-sxm"]
    assert {pt.measurement.phase for pt in f.points} == {"batch"}
    assert not any(pt.excluded for pt in f.points)
    assert float(np.median(f.abs_errors())) < 0.01
    assert float(f.abs_errors().max()) < 0.03
    for p in ("compute_frac", "memory_frac", "decode_fixed_s"):
        assert getattr(f.efficiency, p) == pytest.approx(getattr(TRUE, p), rel=0.10), p
    model = catalog.models["llama-2-70b"]
    for tp in (2, 4, 8):
        for step in (
            Measurement(phase="prefill", model="llama-2-70b", gpu="h100-sxm", tp=tp, batch=4, tokens=1024,
                        context_tokens=0.0, precision="bf16", latency_s=1.0, origin="x"),
            Measurement(phase="decode", model="llama-2-70b", gpu="h100-sxm", tp=tp, batch=32, tokens=0,
                        context_tokens=1500.0, precision="bf16", latency_s=1.0, origin="x"),
        ):  # fmt: skip
            truth = predict_s(step, model, _hw(catalog, tp))
            assert predict_s(step, model, _hw(catalog, tp, f.efficiency)) == pytest.approx(truth, rel=0.05), (tp, step.phase)


def test_fit_mixes_engine_files_with_the_measurement_csv(catalog: Catalog, tmp_path: Path) -> None:
    sglang = tmp_path / "result.jsonl"
    _write_sglang(catalog, sglang, 0.0, 0)
    rows = read_sglang_one_batch(sglang, tp=1, **RUN)  # type: ignore[arg-type]
    direct = fit_gpu("h100-sxm", rows, catalog, "x").efficiency
    via_api = api.calibrate([], [], sglang_files=[sglang], tp=1, folds=0, **RUN).fits["h100-sxm"].efficiency
    assert via_api.compute_frac == direct.compute_frac


# --------------------------------------------------------------------------- malformed files

GOOD = (
    '{"run_name": "r", "batch_size": 4, "input_len": 512, "output_len": 16, "prefill_latency": 0.05, '
    '"median_decode_latency": 0.007}'
)


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        (GOOD.replace('"prefill_latency": 0.05', '"prefill_latency": "fast"'), "prefill_latency"),
        (GOOD.replace('"prefill_latency": 0.05', '"prefill_latency": -0.05'), "prefill_latency"),
        (GOOD.replace('"prefill_latency": 0.05', '"prefill_latency": NaN'), None),
        (GOOD.replace('"prefill_latency": 0.05, ', ""), "prefill_latency"),
        (GOOD.replace('"batch_size": 4', '"batch_size": 0'), "batch_size"),
        (GOOD.replace('"batch_size": 4', '"batch_size": 2.5'), "batch_size"),
        (GOOD.replace('"batch_size": 4', '"batch_size": true'), "batch_size"),
        (GOOD.replace('"input_len": 512, ', ""), "input_len"),
        (GOOD.replace(', "median_decode_latency": 0.007', ""), "median_decode_latency"),
        (GOOD.replace('"median_decode_latency": 0.007', '"median_decode_latency": null'), "median_decode_latency"),
        (GOOD[:-1], None),  # truncated line
        ("[1, 2]", None),
    ],
)
def test_malformed_sglang_line_names_file_line_field(tmp_path: Path, bad: str, field: str | None) -> None:
    path = tmp_path / "result.jsonl"
    path.write_text(f"{GOOD}\n\n{bad}\n{GOOD}\n")  # a blank line keeps the numbering
    with pytest.raises(InputError) as info:
        read_sglang_one_batch(path, tp=1, **RUN)  # type: ignore[arg-type]
    msg = info.value.message
    assert msg.startswith(f"{path}:3: "), msg
    if field is not None:
        assert f"field {field!r}" in msg, msg


def test_empty_sglang_file(tmp_path: Path) -> None:
    path = tmp_path / "result.jsonl"
    path.write_text("\n\n")
    with pytest.raises(InputError) as info:
        read_sglang_one_batch(path, tp=1, **RUN)  # type: ignore[arg-type]
    assert info.value.message.startswith(f"{path}: no result lines")


def _pytorch_record(**args: object) -> list[dict[str, object]]:
    base: dict[str, object] = {"input_len": 512, "output_len": 16, "batch_size": 4, "n": 1, "use_beam_search": False}
    base["tensor_parallel_size"] = 1
    base.update(args)
    return [
        {
            "benchmark": {"name": "vLLM benchmark", "extra_info": {"args": base}},
            "model": {"name": "m"},
            "metric": {"name": "latency", "benchmark_values": [0.5, 0.6, 0.55], "extra_info": {}},
        }
    ]


@pytest.mark.parametrize(
    ("doc", "needle"),
    [
        ({"latencies": [0.5]}, "field 'avg_latency': missing"),
        ({"avg_latency": 0.5}, "field 'latencies': missing"),
        ({"avg_latency": 0.5, "latencies": []}, "field 'latencies': expected a non-empty list"),
        ({"avg_latency": 0.5, "latencies": [0.5, "x"]}, "field 'latencies[1]'"),
        ({"avg_latency": 0.5, "latencies": [0.5, 0]}, "field 'latencies[1]'"),
        ("text", "expected a JSON object"),
        (_pytorch_record(batch_size="eight"), "field '[0].benchmark.extra_info.args.batch_size'"),
        (_pytorch_record(n=2), "n=2"),
        (_pytorch_record(use_beam_search=True), "use_beam_search=True"),
        (_pytorch_record(batch_size=16, input_len=1024), "exceeds max_num_batched_tokens 8192"),
        (_pytorch_record(batch_size=16, input_len=1024, max_num_batched_tokens=8000), "exceeds max_num_batched_tokens 8000"),
        (_pytorch_record(batch_size=300, input_len=16), "exceeds max_num_seqs 256"),
        ([{"metric": {"name": "throughput"}}], "no record with metric.name 'latency'"),
        ([{"metric": {"name": "latency", "benchmark_values": [1.0]}}], "field '[0].benchmark': missing"),
    ],
)
def test_malformed_vllm_file_names_file_and_field(tmp_path: Path, doc: object, needle: str) -> None:
    path = tmp_path / "latency.json"
    path.write_text(json.dumps(doc, indent=4) if isinstance(doc, dict) else json.dumps(doc))
    with pytest.raises(InputError) as info:
        read_vllm_latency(path, batch_size=None, input_len=None, output_len=None, tp=None, **RUN)  # type: ignore[arg-type]
    msg = info.value.message
    assert msg.startswith(str(path)), msg
    assert needle in msg, msg


def test_vllm_field_error_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "latency.json"
    path.write_text(json.dumps({"avg_latency": 0.5, "std_latency": 0.0, "latencies": [0.5, "x"]}, indent=4))
    with pytest.raises(InputError) as info:
        read_vllm_latency(path, batch_size=1, input_len=1, output_len=2, tp=1, **RUN)  # type: ignore[arg-type]
    assert info.value.message.startswith(f"{path}:4: field 'latencies[1]'"), info.value.message
    path.write_text('{\n    "avg_latency": 0.5,\n    "latencies": [0.5,,]\n}')
    with pytest.raises(InputError) as info:
        read_vllm_latency(path, batch_size=1, input_len=1, output_len=2, tp=1, **RUN)  # type: ignore[arg-type]
    assert info.value.message.startswith(f"{path}:3: malformed JSON"), info.value.message


def test_larger_budget_recorded_in_the_file_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "latency.pytorch.json"
    path.write_text(json.dumps(_pytorch_record(batch_size=16, input_len=1024, max_num_batched_tokens=16384)))
    (m,) = read_vllm_latency(path, **RUN)  # type: ignore[arg-type]
    assert (m.batch, m.tokens, m.latency_s) == (16, 1024, 0.55)


# --------------------------------------------------------------------------- the command line


def test_cli_fit_on_engine_files(run_cli: Run, catalog: Catalog, tmp_path: Path) -> None:
    sglang = tmp_path / "result.jsonl"
    _write_sglang(catalog, sglang, 0.0, 0)
    target = tmp_path / "out" / "efficiency.yaml"
    target.parent.mkdir()
    args = ("calibrate", "fit", "--sglang", str(sglang), "--model", "Llama_3.1_8B", "--gpu", "H100_SXM", "--tp", "1",
            "--precision", "bf16", "--folds", "0", "--format", "json")  # fmt: skip
    code, out, err = run_cli(*args, "--write", str(target))
    assert code == 2  # a source in no sources.yaml has no date: one clear error, not a crash
    assert "give --as-of" in err.replace("\n", "")
    assert not target.exists()
    code, out, err = run_cli(*args, "--write", str(target), "--as-of", "2026-05-01")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["status"] == "ok"
    assert doc["inputs"]["sglang"] == [str(sglang)]
    assert "vllm" not in doc["inputs"]
    written = target.read_text()
    assert "compute_frac: 0.55" in written
    # same input, byte-identical output
    assert run_cli(*args)[1] == run_cli(*args)[1]


def test_cli_fit_on_vllm_pytorch_files(run_cli: Run, catalog: Catalog, tmp_path: Path) -> None:
    paths = _write_vllm(catalog, tmp_path, 0.0, 0)
    vllm_args = [a for p in paths for a in ("--vllm", str(p))]
    code, out, err = run_cli(
        "calibrate", "fit", *vllm_args, "--model", "llama-2-70b", "--gpu", "h100-sxm", "--precision", "bf16", "--folds", "0",
        "--format", "json",
    )  # fmt: skip
    assert code == 0, err
    assert json.loads(out)["inputs"]["vllm"] == [str(p) for p in paths]


ON = ("--model", "llama-3.1-8b", "--gpu", "h100-sxm")


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (("--sglang", str(SGLANG), "--gpu", "h100-sxm", "--tp", "1", "--precision", "bf16"), "give --model"),
        (("--sglang", str(SGLANG), *ON, "--precision", "bf16"), "give --tp"),
        (("--vllm", str(VLLM), *ON), "give --precision"),
        (("--vllm", str(VLLM), *ON, "--precision", "bf16", "--tp", "1"), "give --batch-size"),
        (("--sglang", str(SGLANG), *ON, "--tp", "1", "--precision", "int4"), "use bf16 or fp8"),
        (("--sglang", str(SGLANG), *ON, "--tp", "0", "--precision", "bf16"), "--tp must be 1 or more"),
        (("--sglang", str(SGLANG), *ON, "--tp", "1", "--precision", "bf16", "--input-len", "8"), "SGLang lines record"),
        (
            ("--sglang", str(SGLANG), "--model", "nope-9b", "--gpu", "h100-sxm", "--tp", "1", "--precision", "bf16"),
            "unknown model",
        ),
        (("--splitwise", str(SGLANG), "--model", "llama-3.1-8b"), "--model: these describe --sglang/--vllm"),
    ],
)
def test_cli_engine_flag_errors(run_cli: Run, extra: tuple[str, ...], needle: str) -> None:
    assert_input_error(run_cli("calibrate", "fit", *extra), needle)


def test_cli_malformed_engine_file_is_one_error(run_cli: Run, tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text(f"{GOOD}\n{GOOD.replace('0.007', '-1')}\n")
    result = run_cli(
        "calibrate", "fit", "--sglang", str(path), "--model", "llama-3.1-8b", "--gpu", "h100-sxm", "--tp", "1",
        "--precision", "bf16",
    )  # fmt: skip
    assert_input_error(result, f"{path}:2: field 'median_decode_latency'")
