"""The built-in catalogs and user catalog overlays (planner.io.catalog)."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from planner.domain import Catalog, canonical_id
from planner.errors import CatalogError, InputError, UnknownIdError
from planner.io.catalog import ENV_VAR, IdIndex, load_catalog

GPUS = ["h100-sxm", "h100-pcie", "h200-sxm", "a100-sxm-80gb", "a100-sxm-40gb", "a100-pcie-80gb", "l40s", "b200"]
MODELS = ["llama-2-70b", "llama-3.1-8b", "llama-3.1-70b", "llama-3.1-405b", "qwen2.5-32b", "mixtral-8x7b"]
LINKS = [
    "nvlink3",
    "nvlink4",
    "pcie4-x16",
    "pcie5-x16",
    "ib-hdr-200",
    "ib-ndr-400",
    "roce-100",
    "roce-200",
    "roce-400",
    "ethernet-25",
]
DATE = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?$")


# --------------------------------------------------------------------------- built-in catalog


def test_required_ids_exist(catalog: Catalog) -> None:
    assert set(GPUS) <= set(catalog.gpus)
    assert set(MODELS) <= set(catalog.models)
    assert set(LINKS) <= set(catalog.links)


def test_ids_are_canonical(catalog: Catalog) -> None:
    for kind in (catalog.gpus, catalog.models, catalog.links):
        for key, entry in kind.items():
            assert entry.id == key
            assert key == key.lower()


@pytest.mark.parametrize("kind", ["gpus", "models", "links"])
def test_every_figure_has_a_known_source(catalog: Catalog, kind: str) -> None:
    entries = getattr(catalog, kind)
    assert entries
    for entry in entries.values():
        assert entry.sources, entry.id
        key_figure = {"gpus": "hbm_bandwidth_bytes_per_s", "models": "num_params", "links": "bandwidth_bytes_per_s"}[kind]
        assert key_figure in entry.sources, (entry.id, sorted(entry.sources))
        for figure, source in entry.sources.items():
            assert source in catalog.sources, f"{kind} {entry.id}.{figure}: source {source!r} not in sources.yaml"


def test_every_source_has_a_date(catalog: Catalog) -> None:
    assert catalog.sources
    for source in catalog.sources.values():
        assert DATE.match(source.as_of), (source.id, source.as_of)
        assert source.title


def test_every_gpu_has_efficiency(catalog: Catalog) -> None:
    """Every engine has a factor set for every GPU it runs on: fitted, or transferred from a fitted one (TensorRT-LLM
    does not run on AMD GPUs: engines.yaml unsupported_gpus)."""
    assert set(catalog.engines) == {"vllm", "sglang", "trtllm", "pytorch", "splitwise"}
    for engine, effs in catalog.engine_efficiency.items():
        unsupported = set(catalog.engines[engine].unsupported_gpus)
        assert set(effs) == set(catalog.gpus) - unsupported, engine
        assert unsupported == ({"mi300x", "mi325x", "mi355x"} if engine == "trtllm" else set()), engine
        fitted = 0
        for gpu, eff in effs.items():
            assert eff.gpu == gpu
            assert eff.fitted_on, (engine, gpu)  # transferred entries carry their donor's fitted_on
            for frac in (eff.compute_frac, eff.attention_compute_frac, eff.memory_frac, eff.allreduce_bandwidth_frac):
                assert 0 < frac < 1, (engine, gpu, frac)
            if eff.transferred_from is None:
                fitted += 1
            else:
                donor = effs[eff.transferred_from]
                assert donor.transferred_from is None
                assert eff.compute_frac == donor.compute_frac
        assert fitted >= 2, engine
    split = catalog.engine_efficiency["splitwise"]
    assert split["h100-sxm"].transferred_from is None and split["a100-sxm-80gb"].transferred_from is None
    assert "perf_model.csv" in split["h100-sxm"].fitted_on
    assert "h100-torch" in catalog.engine_efficiency["pytorch"]["h100-sxm"].fitted_on or "measurements.csv" in (
        catalog.engine_efficiency["pytorch"]["h100-sxm"].fitted_on
    )
    for engine in ("vllm", "sglang", "trtllm"):
        for gpu in ("h100-sxm", "h200-sxm", "b200", "a100-sxm-80gb", "l40s"):  # the GPUs the op tables cover
            assert catalog.engine_efficiency[engine][gpu].transferred_from is None, (engine, gpu)


def test_ampere_has_no_fp8(catalog: Catalog) -> None:
    for gpu in ("a100-sxm-80gb", "a100-sxm-40gb", "a100-pcie-80gb"):
        assert catalog.gpus[gpu].fp8_flop_per_s is None
        assert catalog.gpus[gpu].peak_flop_per_s("fp8") is None
    for gpu in ("h100-sxm", "h200-sxm", "b200", "l40s"):
        assert catalog.gpus[gpu].fp8_flop_per_s is not None


def test_h100_sxm_figures(catalog: Catalog) -> None:
    g = catalog.gpus["h100-sxm"]
    assert g.bf16_flop_per_s == pytest.approx(989.4e12)
    assert g.hbm_capacity_bytes == 80 * 2**30
    assert g.hbm_bandwidth_bytes_per_s == pytest.approx(3.35e12)


def test_link_units(catalog: Catalog) -> None:
    # network links are quoted in Gbit/s: 400 Gb/s = 50 GB/s per direction
    assert catalog.links["ib-ndr-400"].bandwidth_bytes_per_s == pytest.approx(50e9)
    assert catalog.links["ethernet-25"].bandwidth_bytes_per_s == pytest.approx(3.125e9)


def test_mixtral_is_moe(catalog: Catalog) -> None:
    m = catalog.models["mixtral-8x7b"]
    assert m.is_moe
    assert m.num_active_params < m.num_params
    assert m.num_experts == 8
    assert m.experts_per_token == 2
    dense = catalog.models["llama-3.1-70b"]
    assert not dense.is_moe
    assert dense.num_active_params == dense.num_params


def test_engine_assumptions(catalog: Catalog) -> None:
    assert catalog.engine.gpu_memory_utilization_frac == 0.9
    assert set(catalog.engine.net_efficiency_frac) == {"nvlink", "pcie", "infiniband", "roce", "ethernet"}


# --------------------------------------------------------------------------- id resolution


@pytest.mark.parametrize(
    ("raw", "kind", "expected"),
    [
        ("H100_SXM", "gpus", "h100-sxm"),
        ("h100.sxm", "gpus", "h100-sxm"),
        (" H100-Sxm ", "gpus", "h100-sxm"),
        ("llama_3_1_70b", "models", "llama-3.1-70b"),
        ("Llama-3.1-70B", "models", "llama-3.1-70b"),
        ("QWEN2_5_32B", "models", "qwen2.5-32b"),
        ("IB_NDR_400", "links", "ib-ndr-400"),
    ],
)
def test_id_resolution(catalog: Catalog, raw: str, kind: str, expected: str) -> None:
    assert IdIndex(kind, getattr(catalog, kind)).resolve(raw) == expected


def test_canonical_id() -> None:
    assert canonical_id("Llama_3.1-70B") == "llama-3-1-70b"
    assert canonical_id("--a__b..c--") == "a-b-c"


def test_unknown_id_lists_close_matches(catalog: Catalog) -> None:
    with pytest.raises(UnknownIdError) as info:
        IdIndex("GPU", catalog.gpus).resolve("h100-sx", "--gpu")
    assert info.value.message == "--gpu: unknown GPU id 'h100-sx'"
    assert info.value.hint is not None
    assert "h100-sxm" in info.value.hint
    assert info.value.exit_code == 2


def test_unknown_id_without_close_match_lists_all(catalog: Catalog) -> None:
    with pytest.raises(UnknownIdError) as info:
        IdIndex("model", catalog.models).resolve("zzzzzzzzzzzz")
    assert info.value.hint is not None
    for m in MODELS:
        assert m in info.value.hint


# --------------------------------------------------------------------------- user catalogs


def gpu_yaml(gpu_id: str, *, bandwidth: object = 4000, source: str = "nvidia-h100-datasheet", extra: str = "") -> str:
    return textwrap.dedent(
        f"""\
        schema_version: 1
        gpus:
          {gpu_id}:
            name: "Test GPU {gpu_id}"
            source: {source}
            bf16_dense_tflop_per_s: 1000
            fp16_dense_tflop_per_s: 1000
            fp8_dense_tflop_per_s: 2000
            hbm_capacity_gib: 96
            hbm_bandwidth_gbyte_per_s: {bandwidth}
            tdp_w: 700
            nvlink_gbyte_per_s: 450
            pcie_generation: 5
            gpus_per_node: 8
        """
    ) + textwrap.indent(extra, "    ")


def write_overlay(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    override = gpu_yaml("h100-sxm").splitlines()
    new = gpu_yaml("my-gpu", bandwidth=5000).splitlines()[2:]  # drop schema_version/gpus: header
    (directory / "gpus.yaml").write_text("\n".join(override + new) + "\n")
    (directory / "efficiency.yaml").write_text(
        textwrap.dedent(
            """\
            schema_version: 1
            efficiency:
              my-gpu:
                transferred_from: h100-sxm
                note: no measurements of this test GPU
            """
        )
    )
    return directory


def test_user_catalog_overrides_and_extends(tmp_path: Path, catalog: Catalog) -> None:
    cat = load_catalog([write_overlay(tmp_path / "cat")])
    assert cat.gpus["h100-sxm"].hbm_bandwidth_bytes_per_s == pytest.approx(4000e9)
    assert cat.gpus["h100-sxm"].hbm_capacity_bytes == 96 * 2**30
    assert "my-gpu" in cat.gpus
    assert cat.gpus["my-gpu"].hbm_bandwidth_bytes_per_s == pytest.approx(5000e9)
    eff = cat.efficiency["my-gpu"]
    assert eff.transferred_from == "h100-sxm"
    assert eff.compute_frac == catalog.efficiency["h100-sxm"].compute_frac
    # everything else is still the built-in catalog
    assert set(catalog.gpus) | {"my-gpu"} == set(cat.gpus)
    assert cat.models.keys() == catalog.models.keys()
    assert cat.gpus["a100-sxm-80gb"] == catalog.gpus["a100-sxm-80gb"]
    assert str(tmp_path / "cat" / "gpus.yaml") in cat.origin["gpus:my-gpu"]
    # the built-in catalog object is not changed by the overlay
    assert catalog.gpus["h100-sxm"].hbm_bandwidth_bytes_per_s == pytest.approx(3350e9)


def test_env_var_is_honoured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, str(write_overlay(tmp_path / "envcat")))
    cat = load_catalog()
    assert "my-gpu" in cat.gpus
    assert cat.gpus["h100-sxm"].hbm_bandwidth_bytes_per_s == pytest.approx(4000e9)


def test_env_var_missing_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "absent"))
    with pytest.raises(CatalogError) as info:
        load_catalog()
    assert str(tmp_path / "absent") in info.value.message


def test_new_gpu_without_efficiency_is_an_error(tmp_path: Path) -> None:
    d = tmp_path / "c"
    d.mkdir()
    (d / "gpus.yaml").write_text(gpu_yaml("my-gpu"))
    with pytest.raises(CatalogError) as info:
        load_catalog([d])
    assert "efficiency" in info.value.message
    assert "my-gpu" in info.value.message


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), start=1) if needle in line)


@pytest.mark.parametrize(
    ("case", "field"),
    [
        ("unknown key", "turbo_mode"),
        ("negative bandwidth", "hbm_bandwidth_gbyte_per_s"),
        ("wrong type", "tdp_w"),
    ],
)
def test_malformed_user_gpu(tmp_path: Path, case: str, field: str) -> None:
    if case == "unknown key":
        text = gpu_yaml("my-gpu", extra="turbo_mode: true\n")
    elif case == "negative bandwidth":
        text = gpu_yaml("my-gpu", bandwidth=-1)
    else:
        text = gpu_yaml("my-gpu").replace("tdp_w: 700", "tdp_w: lots")
    d = tmp_path / "c"
    d.mkdir()
    path = d / "gpus.yaml"
    path.write_text(text)
    with pytest.raises(CatalogError) as info:
        load_catalog([d])
    msg = info.value.message
    assert msg.startswith(f"{path}:{_line_of(text, field + ':')}:"), msg
    assert f"gpus.my-gpu.{field}" in msg
    if case == "unknown key":
        assert "unknown key" in msg


def _duplicate_key_catalog(tmp_path: Path) -> tuple[Path, str]:
    text = gpu_yaml("my-gpu") + "    tdp_w: 800\n"
    d = tmp_path / "c"
    d.mkdir()
    (d / "gpus.yaml").write_text(text)
    return d, text


def test_duplicate_key_in_user_catalog(tmp_path: Path) -> None:
    d, text = _duplicate_key_catalog(tmp_path)
    with pytest.raises(InputError) as info:
        load_catalog([d])
    msg = info.value.message
    assert msg.startswith(f"{d / 'gpus.yaml'}:{len(text.splitlines())}:"), msg
    assert "duplicate key 'tdp_w'" in msg


def test_duplicate_key_in_user_catalog_is_a_catalog_error(tmp_path: Path) -> None:
    d, _ = _duplicate_key_catalog(tmp_path)
    with pytest.raises(CatalogError):
        load_catalog([d])


def test_missing_source_id(tmp_path: Path) -> None:
    d = tmp_path / "c"
    d.mkdir()
    (d / "gpus.yaml").write_text(gpu_yaml("h100-sxm", source="no-such-source"))
    with pytest.raises(CatalogError) as info:
        load_catalog([d])
    msg = info.value.message
    assert str(d / "gpus.yaml") in msg
    assert "h100-sxm" in msg
    assert "'no-such-source'" in msg
    assert "sources.yaml" in msg


def test_same_id_spelled_twice(tmp_path: Path) -> None:
    d = tmp_path / "c"
    d.mkdir()
    first = gpu_yaml("my-gpu").splitlines()
    second = gpu_yaml("MY_GPU").splitlines()[2:]
    (d / "gpus.yaml").write_text("\n".join(first + second) + "\n")
    with pytest.raises(CatalogError) as info:
        load_catalog([d])
    assert "same id" in info.value.message


def test_transferred_entry_needs_a_note(tmp_path: Path) -> None:
    d = tmp_path / "c"
    d.mkdir()
    (d / "gpus.yaml").write_text(gpu_yaml("my-gpu"))
    path = d / "efficiency.yaml"
    path.write_text("schema_version: 1\nefficiency:\n  my-gpu:\n    transferred_from: h100-sxm\n")
    with pytest.raises(CatalogError) as info:
        load_catalog([d])
    assert info.value.message.startswith(f"{path}:3: efficiency.my-gpu:"), info.value.message
    assert "note" in info.value.message


def test_missing_catalog_dir(tmp_path: Path) -> None:
    with pytest.raises(CatalogError) as info:
        load_catalog([tmp_path / "absent"])
    assert "does not exist" in info.value.message
