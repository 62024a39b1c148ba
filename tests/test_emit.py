"""``planner size --emit ENGINE DIR`` (issue 15, item 5): the launch settings and Kubernetes skeletons of a plan.

The emitted numbers are the plan's (TP, layout, replicas, batch, budget) or the engine profile's (memory fraction,
default budget); every flag is one the engine defines at the profile's release (catalogs/engine_flags.yaml); the
files parse; a rerun gives the same bytes; bad requests are one ``error:`` line with nothing written."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import REPO, Lazy, assert_input_error, cli

from planner.domain import Catalog, Deployment, LinkUse, Pool
from planner.errors import InputError
from planner.io.engine_flags import EngineFlags, FlagProgram, load_engine_flags
from planner.report.emit import EmitInputs, render

CHATBOT = str(REPO / "examples" / "workloads" / "chatbot.yaml")
MOE = [
    "--model", "deepseek-v3", "--precision", "fp8", "--rate-rps", "30", "--isl", "2000", "--osl", "300",
    "--ttft-p99-ms", "1000", "--tpot-p99-ms", "60", "--prefill-gpus", "h200-sxm", "--decode-gpus", "h200-sxm",
]  # fmt: skip
CASES: dict[str, tuple[list[str], str]] = {
    "dense-vllm": ([CHATBOT], "vllm"),
    "dense-sglang": ([CHATBOT, "--engine", "sglang"], "sglang"),
    "dense-dynamo": ([CHATBOT], "dynamo"),
    "dense-dynamo-sglang": ([CHATBOT, "--engine", "sglang"], "dynamo"),
    "moe-vllm": (MOE, "vllm"),
    "moe-sglang": ([*MOE, "--engine", "sglang"], "sglang"),
    "moe-dynamo": (MOE, "dynamo"),
}
PROGRAM = {"vllm": ("vllm", "serve"), "sglang": ("sglang", "launch_server")}


@pytest.fixture(scope="module")
def flags() -> dict[str, EngineFlags]:
    return load_engine_flags()


@pytest.fixture(scope="module")
def emitted(tmp_path_factory: pytest.TempPathFactory) -> Lazy[tuple[dict[str, Any], Path]]:
    """Case -> (the JSON result of ``planner size ... --emit ENGINE DIR -f json``, DIR)."""

    def make(case: str) -> tuple[dict[str, Any], Path]:
        args, engine = CASES[case]
        out = tmp_path_factory.mktemp(case) / "deploy"
        code, stdout, err = cli("size", *args, "--emit", engine, str(out), "-f", "json")
        assert code == 0, err
        return json.loads(stdout), out

    return Lazy(make)


def _exec_argv(script: str) -> list[str]:
    """The words of a launch script's ``exec`` command."""
    text = script[script.index("\nexec ") + len("\nexec ") :]
    return shlex.split(text.replace("\\\n", " "))


def _value(argv: list[str], flag: str) -> str | None:
    return argv[argv.index(flag) + 1] if flag in argv else None


def _summary(out: Path) -> dict[str, Any]:
    return json.loads((out / "plan-summary.json").read_text())


def _pool_files(out: Path, data: dict[str, Any]) -> list[tuple[dict[str, Any], dict[str, Any], list[str], Any]]:
    """Per pool of the JSON result: (the pool, its summary entry, the launch argv, the parsed manifest)."""
    by_key = {entry["key"]: entry for entry in _summary(out)["pools"]}
    assert len(by_key) == len(data["pools"])
    rows = []
    for pool in data["pools"]:
        entry = by_key[_key(pool)]
        assert (entry["role"], entry["gpu"], entry["tp"], entry["replicas"]) == (
            pool["role"],
            pool["gpu"],
            pool["tp"],
            pool["replicas"],
        )
        argv = _exec_argv((out / entry["files"]["launch"]).read_text())
        manifest = yaml.safe_load((out / entry["files"]["manifest"]).read_text())
        rows.append((pool, entry, argv, manifest))
    return rows


def _key(pool: dict[str, Any]) -> str:
    """The plan's key of a pool of the JSON result (what the routing names it by)."""
    fields = ("role", "gpu", "tp", "replicas", "max_batch", "token_budget", "link", "attention_dp", "moe_ep")
    return Pool(**{k: pool[k] for k in fields if k in pool}).key


def _layout(pool: dict[str, Any]) -> tuple[int, int]:
    return pool.get("attention_dp", 1), pool.get("moe_ep", 1)


# ------------------------------------------------------------------------------------------- the numbers


@pytest.mark.parametrize("case", ["dense-vllm", "moe-vllm"])
def test_vllm_settings_are_the_plans(case: str, emitted: Lazy[tuple[dict[str, Any], Path]], catalog: Catalog) -> None:
    doc, out = emitted[case]
    data = doc["data"]
    engine = catalog.engines["vllm"]
    model = catalog.models[doc["inputs"]["workload"]["model"]]
    rows = _pool_files(out, data)
    assert {r[0]["role"] for r in rows} == {"prefill", "decode"}
    for pool, _, argv, manifest in rows:
        dp, ep = _layout(pool)
        assert argv[:3] == ["vllm", "serve", model.hf_id]
        assert int(_value(argv, "--tensor-parallel-size") or 0) * dp == pool["tp"]
        assert _value(argv, "--data-parallel-size") == (str(dp) if dp > 1 else None)
        assert ("--enable-expert-parallel" in argv) == (ep > 1)
        assert int(_value(argv, "--max-num-seqs") or 0) == -(-pool["max_batch"] // dp)
        assert int(_value(argv, "--max-num-batched-tokens") or 0) == engine.limits(pool["gpu"]).max_num_batched_tokens
        assert float(_value(argv, "--gpu-memory-utilization") or 0) == engine.gpu_memory_utilization_frac
        kv = json.loads(_value(argv, "--kv-transfer-config") or "{}")
        assert kv == {"kv_connector": "NixlConnector", "kv_role": "kv_both"}
        # the manifest: the same command, the pool's replicas and GPUs per replica
        assert manifest["kind"] == "Deployment"
        assert manifest["spec"]["replicas"] == pool["replicas"]
        container = manifest["spec"]["template"]["spec"]["containers"][0]
        assert container["resources"]["limits"]["nvidia.com/gpu"] == pool["tp"]
        assert [*container["command"], *container["args"]] == argv
        assert manifest["metadata"]["namespace"] == "<NAMESPACE>" and container["image"] == "<IMAGE>"  # placeholders


def test_vllm_dense_precision_and_moe_layout(emitted: Lazy[tuple[dict[str, Any], Path]]) -> None:
    """bf16 plans say --dtype bfloat16; the fp8 MoE plan quantizes to fp8 with an fp8 KV cache and runs its
    EP 8 / DP-attention 8 replicas as 8 data-parallel ranks of TP 1 with expert parallelism."""
    dense = [r[2] for r in _pool_files(emitted["dense-vllm"][1], emitted["dense-vllm"][0]["data"])]
    assert all(_value(a, "--dtype") == "bfloat16" and "--quantization" not in a for a in dense)
    doc, out = emitted["moe-vllm"]
    rows = _pool_files(out, doc["data"])
    assert any(_layout(p) == (8, 8) for p, *_ in rows), "the MoE example plans EP 8 with DP attention"
    for pool, _, argv, _ in rows:
        assert _value(argv, "--quantization") == "fp8" and _value(argv, "--kv-cache-dtype") == "fp8"
        if _layout(pool) == (8, 8):
            assert (_value(argv, "--tensor-parallel-size"), _value(argv, "--data-parallel-size")) == ("1", "8")
            assert "--enable-expert-parallel" in argv


@pytest.mark.parametrize("case", ["dense-sglang", "moe-sglang"])
def test_sglang_settings_are_the_plans(case: str, emitted: Lazy[tuple[dict[str, Any], Path]], catalog: Catalog) -> None:
    doc, out = emitted[case]
    engine = catalog.engines["sglang"]
    model = catalog.models[doc["inputs"]["workload"]["model"]]
    for pool, _, argv, manifest in _pool_files(out, doc["data"]):
        dp, ep = _layout(pool)
        assert argv[:3] == ["python3", "-m", "sglang.launch_server"]
        assert _value(argv, "--model-path") == model.hf_id
        assert _value(argv, "--tp-size") == str(pool["tp"])
        assert _value(argv, "--dp-size") == (str(dp) if dp > 1 else None)
        assert ("--enable-dp-attention" in argv) == (dp > 1)
        assert _value(argv, "--ep-size") == (str(ep) if ep > 1 else None)
        assert int(_value(argv, "--max-running-requests") or 0) == max(pool["max_batch"], dp if dp > 1 else 1)
        assert int(_value(argv, "--chunked-prefill-size") or 0) == engine.limits(pool["gpu"]).max_num_batched_tokens
        assert float(_value(argv, "--mem-fraction-static") or 0) == engine.gpu_memory_utilization_frac
        assert _value(argv, "--disaggregation-mode") == pool["role"]
        assert _value(argv, "--disaggregation-transfer-backend") == "mooncake"
        assert manifest["spec"]["replicas"] == pool["replicas"]
        container = manifest["spec"]["template"]["spec"]["containers"][0]
        assert container["resources"]["limits"]["nvidia.com/gpu"] == pool["tp"]
        assert [*container["command"], *container["args"]] == argv


@pytest.mark.parametrize("case", ["dense-dynamo", "dense-dynamo-sglang", "moe-dynamo"])
def test_dynamo_graph_is_the_plan(case: str, emitted: Lazy[tuple[dict[str, Any], Path]], flags: dict[str, EngineFlags]) -> None:
    doc, out = emitted[case]
    backend = doc["inputs"]["engine"]["id"]
    graph = yaml.safe_load((out / "k8s" / "dynamo-graph.yaml").read_text())
    fields = flags["dynamo"].graph
    assert fields is not None
    assert (graph["apiVersion"], graph["kind"]) == (fields.api_version, fields.kind)
    services = graph["spec"]["services"]
    assert services["Frontend"]["componentType"] == "frontend"
    workers = {k: v for k, v in services.items() if k != "Frontend"}
    assert len(workers) == len(doc["data"]["pools"])
    for name, svc in services.items():  # only the fields of the documented API
        assert set(svc) <= fields.service_fields, name
        assert svc["componentType"] in fields.component_types
        assert set(svc.get("resources", {}).get("limits", {})) <= fields.resource_fields
        assert set(svc["extraPodSpec"]) <= fields.pod_fields
        assert set(svc["extraPodSpec"]["mainContainer"]) <= fields.container_fields
    for pool, _entry, argv, _ in _pool_files(out, doc["data"]):
        svc = next(s for s in workers.values() if s["extraPodSpec"]["mainContainer"]["args"] == argv[3:])
        assert svc["subComponentType"] == pool["role"]
        assert svc["replicas"] == pool["replicas"]
        assert svc["resources"]["limits"]["gpu"] == str(pool["tp"])
        assert argv[:3] == ["python3", "-m", f"dynamo.{backend}"]
        if backend == "vllm":
            role_flag = "--is-prefill-worker" if pool["role"] == "prefill" else "--is-decode-worker"
            assert role_flag in argv and _value(argv, "--connector") == "nixl"
            assert "--kv-transfer-config" not in argv  # Dynamo refuses it beside --connector
            assert int(_value(argv, "--tensor-parallel-size") or 0) * _layout(pool)[0] == pool["tp"]
        else:
            assert _value(argv, "--disaggregation-mode") == pool["role"]
            assert _value(argv, "--disaggregation-transfer-backend") == "nixl"
            assert _value(argv, "--tp-size") == str(pool["tp"])
    assert _exec_argv((out / "launch" / "frontend.sh").read_text()) == ["python3", "-m", "dynamo.frontend"]


# ------------------------------------------------------------------------------------------- documented flags


def _programs(case: str, doc: dict[str, Any], flags: dict[str, EngineFlags]) -> tuple[FlagProgram, ...]:
    engine = CASES[case][1]
    if engine == "dynamo":
        dyn = flags["dynamo"]
        return dyn.programs[doc["inputs"]["engine"]["id"]], dyn.programs["frontend"]
    name, program = PROGRAM[engine]
    return (flags[name].programs[program],)


_MENTION = re.compile(r"(?<![\w-])--[a-z0-9][a-z0-9-]*")


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_emitted_flag_is_documented(
    case: str, emitted: Lazy[tuple[dict[str, Any], Path]], flags: dict[str, EngineFlags]
) -> None:
    """Each launch command and manifest names only flags (and values) its program defines at the release, and every
    flag a launch script or manifest mentions in its comments is one too."""
    doc, out = emitted[case]
    programs = _programs(case, doc, flags)
    known = set().union(*(p.flags for p in programs))
    for path in sorted(out.rglob("*")):
        if path.suffix not in (".sh", ".yaml"):
            continue
        text = path.read_text()
        if path.suffix == ".sh":
            argv = _exec_argv(text)
            program = next(p for p in programs if tuple(argv[: len(p.command)]) == p.command)
            assert program.undocumented(argv[len(program.command) :]) == [], path.name
        else:
            for container in _containers(yaml.safe_load(text)):
                program = next(p for p in programs if tuple(container["command"]) == p.command)
                assert program.undocumented(container["args"]) == [], path.name
        mentioned = set(_MENTION.findall(text.replace("planner size --emit", "")))
        assert mentioned <= known, (path.name, sorted(mentioned - known))
    for pool in _summary(out)["pools"]:
        assert {s["flag"] for s in pool["settings"] if s["flag"]} <= known
        assert {s["origin"] for s in pool["settings"]} <= {"plan", "profile", "catalog", "emit"}


def _containers(doc: Any) -> list[dict[str, Any]]:
    if doc["kind"] == "Deployment":
        return list(doc["spec"]["template"]["spec"]["containers"])
    return [
        s["extraPodSpec"]["mainContainer"]
        for s in doc["spec"]["services"].values()
        if "command" in s["extraPodSpec"]["mainContainer"]
    ]


def test_flag_check_can_fail(flags: dict[str, EngineFlags]) -> None:
    serve = flags["vllm"].programs["serve"]
    assert serve.undocumented(["m", "--tensor-parallel-size", "4", "--max-num-seqs", "8"]) == []
    assert serve.undocumented(["--tensor-parallel-size", "4", "--tp-magic", "1"]) == ["--tp-magic"]
    assert serve.undocumented(["--kv-cache-dtype", "fp8_e4m3"]) == []
    assert serve.undocumented(["--kv-cache-dtype", "fp7"]) == ["--kv-cache-dtype fp7"]
    sgl = flags["sglang"].programs["launch_server"]
    assert sgl.undocumented(["--kv-cache-dtype", "fp8"]) == ["--kv-cache-dtype fp8"]  # SGLang spells it fp8_e4m3
    assert sgl.undocumented(["--max-num-seqs", "8"]) == ["--max-num-seqs"]  # vLLM's name, not SGLang's


def test_flag_catalog_names_the_profiles_releases(flags: dict[str, EngineFlags], catalog: Catalog) -> None:
    for engine in ("vllm", "sglang"):
        assert flags[engine].version == catalog.engines[engine].version
        assert flags[engine].source["tag"] == f"v{catalog.engines[engine].version}"
        assert re.search(r"sha256 [0-9a-f]{64}", flags[engine].source["package"])
    assert flags["dynamo"].backends["vllm"] == catalog.engines["vllm"].version
    assert flags["dynamo"].backends["sglang"].startswith(catalog.engines["sglang"].version)
    # the flags planner writes are in the lists (a list read from the wrong file would lack them)
    assert {"--tensor-parallel-size", "--data-parallel-size", "--enable-expert-parallel", "--kv-transfer-config"} <= (
        flags["vllm"].programs["serve"].flags
    )
    assert {"--disaggregation-mode", "--disaggregation-transfer-backend", "--disaggregation-ib-device"} <= (
        flags["sglang"].programs["launch_server"].flags
    )
    assert "NixlConnector" in flags["vllm"].kv_connectors and "kv_both" in flags["vllm"].kv_roles


# ------------------------------------------------------------------------------------------- the files


@pytest.mark.parametrize("case", sorted(CASES))
def test_files_parse_and_scripts_run_in_sh(case: str, emitted: Lazy[tuple[dict[str, Any], Path]]) -> None:
    doc, out = emitted[case]
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert files == doc["data"]["emit"]["files"]
    assert "README.txt" in files and "plan-summary.json" in files
    for name in files:
        path = out / name
        if name.endswith(".yaml"):
            parsed = yaml.safe_load(path.read_text())
            assert isinstance(parsed, dict) and parsed["kind"] in ("Deployment", "DynamoGraphDeployment")
        elif name.endswith(".json"):
            json.loads(path.read_text())
        elif name.endswith(".sh"):
            assert os.access(path, os.X_OK), name
            proc = subprocess.run(["sh", "-n", str(path)], capture_output=True, text=True, timeout=30, check=False)
            assert proc.returncode == 0, proc.stderr
    readme = (out / "README.txt").read_text()
    for name in files:
        assert name in readme or name == "README.txt"
    assert "SKELETON" in readme and "TODO" in readme


def test_rerun_is_byte_identical(emitted: Lazy[tuple[dict[str, Any], Path]], tmp_path: Path) -> None:
    first_doc, first = emitted["moe-vllm"]
    again = tmp_path / "again"
    code, stdout, err = cli("size", *MOE, "--emit", "vllm", str(again), "-f", "json")
    assert code == 0, err
    names = sorted(p.relative_to(first).as_posix() for p in first.rglob("*"))
    assert names == sorted(p.relative_to(again).as_posix() for p in again.rglob("*"))
    for name in names:
        a, b = first / name, again / name
        assert a.is_dir() == b.is_dir()
        if a.is_file():
            assert a.read_bytes() == b.read_bytes(), name
            assert a.stat().st_mode == b.stat().st_mode, name
    second = json.loads(stdout)
    first_doc["data"]["emit"].pop("directory"), second["data"]["emit"].pop("directory")
    assert second == first_doc


def test_emit_changes_nothing_else_of_the_result(emitted: Lazy[tuple[dict[str, Any], Path]]) -> None:
    with_emit, _ = emitted["dense-vllm"]
    code, stdout, err = cli("size", CHATBOT, "-f", "json")
    assert code == 0, err
    plain = json.loads(stdout)
    assert "emit" not in plain["data"]
    trimmed = json.loads(json.dumps(with_emit))
    trimmed["data"].pop("emit")
    assert trimmed == plain


def test_auto_is_the_plans_engine(tmp_path: Path) -> None:
    code, stdout, err = cli("size", CHATBOT, "--engine", "sglang", "--emit", "auto", str(tmp_path / "d"), "-f", "json")
    assert code == 0, err
    assert json.loads(stdout)["data"]["emit"]["engine"] == "sglang"
    assert "emit: wrote" in err


# ------------------------------------------------------------------------------------------- the pure rendering


def _inputs(catalog: Catalog, pools: tuple[Pool, ...], *, engine: str = "vllm", model: str = "llama-3.1-70b") -> EmitInputs:
    links = tuple(sorted({LinkUse(link=p.link, ports=4) for p in pools if p.link}, key=lambda lu: lu.link))
    return EmitInputs(
        deployment=Deployment(pools=pools, links=links),
        model=catalog.models[model],
        precision="bf16",
        engine=catalog.engines[engine],
        gpus=catalog.gpus,
        links=catalog.links,
    )


def _argv(rendered_files: dict[str, str], name_part: str) -> list[str]:
    return _exec_argv(next(t for n, t in rendered_files.items() if n.startswith("launch/") and name_part in n))


def test_colocated_pool_gets_its_token_budget(catalog: Catalog, flags: dict[str, EngineFlags]) -> None:
    pool = Pool(role="colocated", gpu="h100-sxm", tp=4, replicas=7, max_batch=128, token_budget=1024)
    for engine, flag in (("vllm", "--max-num-batched-tokens"), ("sglang", "--chunked-prefill-size")):
        files = dict(render(_inputs(catalog, (pool,), engine=engine), engine, flags).files)
        argv = _argv(files, "colocated")
        assert _value(argv, flag) == "1024"
        assert not any(a.startswith("--kv-transfer-config") or a.startswith("--disaggregation") for a in argv)
        manifest = yaml.safe_load(next(t for n, t in files.items() if n.startswith("k8s/")))
        assert manifest["spec"]["replicas"] == 7


def test_a_layout_vllm_cannot_run_is_refused(catalog: Catalog, flags: dict[str, EngineFlags]) -> None:
    """vLLM splits experts over all of a replica's GPUs or none (EP = TP x DP); EP 2 of 8 GPUs it cannot express,
    SGLang can (--ep-size 2: each expert over 4 GPUs)."""
    pool = Pool(role="decode", gpu="h200-sxm", tp=8, replicas=1, max_batch=64, moe_ep=2)
    with pytest.raises(InputError, match="experts over 2 groups"):
        render(_inputs(catalog, (pool,), model="deepseek-v3"), "vllm", flags)
    argv = _argv(dict(render(_inputs(catalog, (pool,), engine="sglang", model="deepseek-v3"), "sglang", flags).files), "decode")
    assert _value(argv, "--ep-size") == "2" and _value(argv, "--tp-size") == "8"


def test_a_model_without_checkpoint_is_refused(catalog: Catalog, flags: dict[str, EngineFlags]) -> None:
    pool = Pool(role="decode", gpu="h100-sxm", tp=4, replicas=1, max_batch=64)
    inp = _inputs(catalog, (pool,))
    with pytest.raises(InputError, match="no hf_id"):
        render(replace(inp, model=replace(inp.model, hf_id=None)), "vllm", flags)


def test_engine_mismatch_is_refused_by_the_renderer(catalog: Catalog, flags: dict[str, EngineFlags]) -> None:
    pool = Pool(role="decode", gpu="h100-sxm", tp=4, replicas=1, max_batch=64)
    with pytest.raises(InputError, match="sized under vLLM"):
        render(_inputs(catalog, (pool,)), "sglang", flags)
    with pytest.raises(InputError, match="only with its vllm or sglang backend"):
        render(_inputs(catalog, (pool,), engine="trtllm"), "dynamo", flags)


# ------------------------------------------------------------------------------------------- refusals


def test_engine_the_plan_was_not_sized_for(tmp_path: Path) -> None:
    out = tmp_path / "d"
    assert_input_error(cli("size", CHATBOT, "--emit", "sglang", str(out)), "sized under vLLM 0.12.0", "--engine sglang")
    assert not out.exists()
    assert_input_error(cli("size", CHATBOT, "--engine", "trtllm", "--emit", "dynamo", str(out)), "TensorRT-LLM")
    assert_input_error(cli("size", CHATBOT, "--engine", "trtllm", "--emit", "auto", str(out)), "--emit auto")
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_refused_before_sizing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An unknown engine, a non-empty or unwritable DIR and -o inside DIR are refused before the sizing runs."""
    import importlib

    def no_sizing(*args: object, **kwargs: object) -> None:
        raise AssertionError("sized although --emit was refusable up front")

    monkeypatch.setattr(importlib.import_module("planner.api.size"), "run_size", no_sizing)  # planner.api.size is the function
    assert_input_error(cli("size", CHATBOT, "--emit", "trtllm", str(tmp_path / "a")), "ENGINE is one of")
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("mine\n")
    assert_input_error(cli("size", CHATBOT, "--emit", "vllm", str(full)), "not empty")
    assert (full / "keep.txt").read_text() == "mine\n" and sorted(os.listdir(full)) == ["keep.txt"]
    a_file = tmp_path / "file"
    a_file.write_text("x")
    assert_input_error(cli("size", CHATBOT, "--emit", "vllm", str(a_file)), "not a directory")
    assert_input_error(cli("size", CHATBOT, "--emit", "vllm", str(a_file / "sub")), "cannot write: Not a directory")
    inside = tmp_path / "new"
    assert_input_error(cli("size", CHATBOT, "--emit", "vllm", str(inside), "-o", str(inside / "plan.json")), "inside the --emit")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "full"]


def test_an_empty_directory_is_used(tmp_path: Path) -> None:
    out = tmp_path / "empty"
    out.mkdir()
    code, _, err = cli("size", CHATBOT, "--emit", "vllm", str(out))
    assert code == 0, err
    assert (out / "README.txt").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty"]  # no temporary directory left beside it


@pytest.mark.parametrize("failure", [OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_nothing_half_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure: BaseException) -> None:
    """A write that fails (or is interrupted) part way leaves neither DIR nor a temporary directory."""
    real = Path.write_bytes
    calls = {"n": 0}

    def flaky(self: Path, data: bytes) -> int:
        calls["n"] += 1
        if calls["n"] == 3:
            raise failure
        return real(self, data)

    out = tmp_path / "d"
    monkeypatch.setattr(Path, "write_bytes", flaky)
    if isinstance(failure, KeyboardInterrupt):
        from planner.io.output import write_directory_atomic

        with pytest.raises(KeyboardInterrupt):
            write_directory_atomic(out, {"a.txt": "1", "b/c.txt": "2", "d.txt": "3", "e.txt": "4"})
    else:
        assert_input_error(cli("size", CHATBOT, "--emit", "vllm", str(out)), "No space left on device")
    assert calls["n"] == 3
    assert list(tmp_path.iterdir()) == []


def test_emit_leaves_multi_node_layouts_out_and_says_so(emitted: Lazy[tuple[dict[str, Any], Path]]) -> None:
    doc, _ = emitted["moe-sglang"]  # DeepSeek-V3 on H200: without --emit the plan spans nodes (expert parallel)
    assert all(p.get("nodes_per_replica", 1) == 1 and p.get("pp", 1) == 1 for p in doc["data"]["pools"])
    assert any(w.startswith("--emit: layouts across nodes") for w in doc["warnings"])
