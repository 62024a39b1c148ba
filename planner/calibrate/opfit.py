"""Fit the performance core's kernel efficiency factors to per-op latency tables.

The tables (aiconfigurator-core's, read by :mod:`planner.io.optables`) time single kernels inside a
serving engine: GEMMs of shape ``m×k·k×n``, causal context (prefill) attention, decode attention
over a KV cache, and the engine's all-reduce. Each factor is fitted with the formula the core
(:mod:`planner.perf.roofline`) uses it in, so that the core reproduces the tables:

* **GEMM** (:data:`GEMM_FACTORS`): ``t = overlap_q(2·m·n·k / (η_c(s)·P), bytes / (η_m·BW)) + t_k`` with
  ``bytes = n·k·s_w`` (weights) ``+ m·k·s_a`` (activations in) ``+ m·n·2`` (bf16 out), ``overlap_q`` the
  ``q``-norm of the two times (``max`` as q → ∞, their sum at q = 1), ``η_c(s) = η_c / (1 + (s_½/s)^p)``
  the share a GEMM of smaller weight dimension ``s = min(n, k)`` reaches, ``t_k`` the kernel's fixed
  time. One least-squares fit in log space, with a soft-L1 loss, over every row of layer-sized
  shapes (``n, k ≥ 1024``), one token to the largest chunks. The shape term is what fp8 needs: on
  H200 its kernels reach 0.3 of fp8 peak at ``s = 1024`` and 0.7 at 8192, where bf16 is flat at 0.8;
  a single ``η_c`` averaged over the table's shapes under-rates the large GEMMs of 70B-class models
  by a third.
* **context attention** (``attention_compute_frac``): flops of the kernel itself, per layer,
  ``2·batch·heads·head_dim·L²`` for causal prompts of ``L`` tokens (QKᵀ and PV, ``4·…·L²``, halved by
  the causal mask). This equals the core's ``2·n_L·d·ΣL²`` where ``heads·head_dim = d``. Fitted on
  long prompts (``L ≥`` :data:`MIN_CONTEXT_ISL`), the compute-bound rows.
* **KV read** (reported beside ``memory_frac``; the core uses one memory factor for weights and
  KV): decode attention reads ``batch·c·2·kv_heads·head_dim·s_kv`` bytes, ``c`` the context length
  (the table's ``isl + step``).
* **all-reduce** (``allreduce_bandwidth_frac``, ``allreduce_latency_s``): the core's
  ``2(t−1)/t · S / (η_ar·B) + α·log2(t)``, ``S`` the message in bytes and ``B`` the link the core
  uses for a TP group of ``t``; a linear least-squares fit of the relative error over messages of
  :data:`ALLREDUCE_MIN_BYTES` to :data:`ALLREDUCE_MAX_BYTES`, all TP degrees at once. The formula
  serves TP degrees the table lacks; for the ones it has, the measured curve itself
  (``allreduce_curve``: latency by message size) is shipped and interpolated. The two-factor line
  is 20-50 % off at either end of the curve (NCCL and the custom all-reduces switch algorithm
  with the size), and prefill chunks sit at its large end.

Rows faster than physics allows under the model (above the datasheet peak FLOP/s, the HBM
bandwidth, or the link bandwidth) are excluded and counted: an L2-resident operand, or an
all-reduce that reduces inside the NVLink switch, beats the roofline the core uses.

Pure numpy/scipy: no file I/O.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
from scipy.optimize import least_squares, lsq_linear

from planner.domain import Precision
from planner.errors import InputError
from planner.perf.roofline import GEMM_SHAPE_MIN_DIM
from planner.units import KV_BYTES, PRECISION_BYTES

if TYPE_CHECKING:
    from planner.io.optables import AllReduceTable, AttentionTable, EngineTables, GemmTable

Array = npt.NDArray[np.float64]

MIN_IDEAL_S = 10e-6
"""GEMM and attention rows whose roofline time at 100 % of peak is below this are not fitted."""
GEMM_MIN_NK = GEMM_SHAPE_MIN_DIM
"""``n`` and ``k`` of the GEMM rows fitted (the layer sizes of real models)."""
GEMM_COMPUTE_MIN_M = 1024
"""Rows with at least this many tokens (``m``) are the compute-bound ones."""
GEMM_MEMORY_MAX_M = 16
"""Rows with at most this many tokens are weight-read-bound."""
MIN_CONTEXT_ISL = 4096
"""Context-attention rows with prompts this long or longer are the compute-bound ones."""
ALLREDUCE_MIN_BYTES = 16 * 2**10
ALLREDUCE_MAX_BYTES = 64 * 2**20
"""The message sizes of inference all-reduces (a few decode tokens to a long prefill chunk)."""
HEAD_DIM = 128
"""Attention rows fitted: head_dim 128 (every catalog model's), full attention (no sliding window)."""
SOFT_L1_SCALE = 0.05
"""Log residuals beyond ~5 % weigh linearly, not quadratically (a robust fit)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class OpFit:
    """What one op contributed: its factors, the rows fitted, the rows excluded as impossible,
    and the model's median and worst ``|predicted/measured − 1|`` on the fitted rows."""

    factors: dict[str, float]
    rows: int
    excluded: int
    candidates: int  # rows of the selected shapes before the exclusion
    median_abs_error_frac: float
    worst_abs_error_frac: float
    detail: dict[str, float] = field(default_factory=dict)
    curve: dict[int, list[tuple[float, float]]] = field(default_factory=dict)  # all-reduce: tp -> (bytes, s)


def _errors(pred: Array, measured: Array) -> tuple[float, float]:
    if pred.size == 0:
        return float("nan"), float("nan")
    err = np.abs(pred / measured - 1.0)
    return float(np.median(err)), float(np.max(err))


def _robust_log_fit(
    model: Callable[[Array], Array], x0: Array, measured: Array, upper: Array | None = None, lower: Array | None = None
) -> Array:
    """Minimise Σ ρ(log model(e^θ) − log measured) over θ = log factors (ρ soft-L1), lower ≤ factors ≤ upper."""
    log_measured = np.log(measured)
    hi = np.full(x0.size, np.inf) if upper is None else np.log(upper)
    lo = np.full(x0.size, -np.inf) if lower is None else np.log(lower)
    start = np.maximum(np.minimum(np.log(x0), hi - 1e-9), lo + 1e-9)

    def residuals(theta: Array) -> Array:
        return np.log(model(np.exp(theta))) - log_measured

    sol = least_squares(
        residuals, start, bounds=(lo, hi), loss="soft_l1", f_scale=SOFT_L1_SCALE,
        xtol=1e-14, ftol=1e-14, gtol=1e-14, max_nfev=2000,
    )  # fmt: skip
    factors: Array = np.exp(sol.x)
    return factors


def gemm_bytes(m: Array, n: Array, k: Array, weight_bytes: float, act_bytes: float, out_bytes: float = 2.0) -> Array:
    """Bytes one GEMM moves: weights ``n·k``, activations in ``m·k`` and out ``m·n``."""
    return n * k * weight_bytes + m * k * act_bytes + m * n * out_bytes


def gemm_model_s(
    m: Array, n: Array, k: Array, *, compute_frac: float, memory_frac: float, peak_flop_per_s: float,
    hbm_bytes_per_s: float, weight_bytes: float, act_bytes: float, half_dim: float = 0.0, dim_exp: float = 1.0,
    kernel_s: float = 0.0, overlap_q: float | None = None,
) -> Array:  # fmt: skip
    """The core's time for one GEMM: its compute and memory time combined as the core combines them
    (:func:`planner.perf.roofline.overlap_s`), compute at the shape's share of ``compute_frac``
    (:func:`planner.perf.roofline.gemm_dim_share`), plus the kernel's fixed time."""
    flops = 2.0 * m * n * k
    moved = gemm_bytes(m, n, k, weight_bytes, act_bytes)
    share = 1.0 if half_dim <= 0 else 1.0 / (1.0 + (half_dim / np.minimum(n, k)) ** dim_exp)
    c = flops / (compute_frac * share * peak_flop_per_s)
    mem = moved / (memory_frac * hbm_bytes_per_s)
    if overlap_q is None:
        both: Array = np.maximum(c, mem)
    else:
        big = np.maximum(c, mem)
        both = big * ((c / big) ** overlap_q + (mem / big) ** overlap_q) ** (1.0 / overlap_q)
    out: Array = both + kernel_s
    return out


GEMM_FACTORS = ("compute_frac", "gemm_half_dim", "gemm_dim_exp", "memory_frac", "overlap_q")
"""The GEMM factors the core uses. The fit has a sixth parameter, the kernel's fixed time ``t_k``
(``detail["kernel_fixed_s"]``): the floor of timing one kernel alone (launch, ramp-up, tail; in fp8
the activation quantization the engines fuse into the previous kernel when serving). Without it the
small shapes drag ``η_m`` and ``η_c`` down (H200 fp8 ``η_m`` 0.64 instead of 0.82); it is not added to
the core's steps, whose fixed per-iteration cost is the end-to-end overhead fit's (``decode_fixed_s``)."""


def fit_gemm(
    m: Array, n: Array, k: Array, latency_s: Array, *, peak_flop_per_s: float, hbm_bytes_per_s: float,
    weight_bytes: float, act_bytes: float,
) -> OpFit:  # fmt: skip
    """The six GEMM factors (:data:`GEMM_FACTORS`) from GEMM rows of one dtype and kernel: every row of
    layer shapes (``n, k ≥`` :data:`GEMM_MIN_NK`), from one token to the largest prefill chunks."""
    m, n, k, latency_s = (np.asarray(a, dtype=np.float64) for a in (m, n, k, latency_s))
    flops = 2.0 * m * n * k
    moved = gemm_bytes(m, n, k, weight_bytes, act_bytes)
    t_compute, t_memory = flops / peak_flop_per_s, moved / hbm_bytes_per_s
    layer = (n >= GEMM_MIN_NK) & (k >= GEMM_MIN_NK)
    compute = layer & (m >= GEMM_COMPUTE_MIN_M) & (t_compute >= t_memory)
    memory = layer & (m <= GEMM_MEMORY_MAX_M)
    impossible = (latency_s < t_compute) | (latency_s < t_memory)
    candidates = layer
    use_c, use_m = compute & ~impossible, memory & ~impossible
    if not use_c.any() or not use_m.any():
        raise ValueError(
            f"GEMM: {int(use_c.sum())} compute-bound and {int(use_m.sum())} weight-read-bound rows of layer shapes; need both"
        )
    used = layer & ~impossible
    x0 = np.array([
        min(0.99, float(np.max(t_compute[use_c] / latency_s[use_c]))), float(GEMM_MIN_NK), 1.5,
        min(0.99, float(np.median(t_memory[use_m] / latency_s[use_m]))), 3e-6, 4.0,
    ])  # fmt: skip

    def model_at(x: Array, sel: npt.NDArray[np.bool_]) -> Array:
        return gemm_model_s(
            m[sel], n[sel], k[sel], compute_frac=x[0], half_dim=x[1], dim_exp=x[2], memory_frac=x[3], kernel_s=x[4],
            overlap_q=x[5], peak_flop_per_s=peak_flop_per_s, hbm_bytes_per_s=hbm_bytes_per_s,
            weight_bytes=weight_bytes, act_bytes=act_bytes,
        )  # fmt: skip

    # p >= 1: the shape term saturates within the tables' decade of widths (a flatter one trades the
    # asymptote against it: A100 bf16 found η_c = 1.0 with p = 0.27, a peak no GEMM reaches)
    lower = np.array([1e-3, 1.0, 1.0, 1e-3, 1e-9, 1.0])
    upper = np.array([1.0, 1e5, 8.0, 1.0, 1e-3, 64.0])
    x = _robust_log_fit(lambda v: model_at(v, used), np.clip(x0, lower * 1.01, upper * 0.99), latency_s[used],
                        upper=upper, lower=lower)  # fmt: skip
    pred = model_at(x, np.ones_like(used))
    med, worst = _errors(pred[used], latency_s[used])
    med_c, _ = _errors(pred[use_c], latency_s[use_c])
    med_m, _ = _errors(pred[use_m], latency_s[use_m])
    between = used & ~compute & ~memory
    med_between, _ = _errors(pred[between], latency_s[between])
    return OpFit(
        factors={
            "compute_frac": float(x[0]),
            "gemm_half_dim": float(x[1]),
            "gemm_dim_exp": float(x[2]),
            "memory_frac": float(x[3]),
            "overlap_q": float(x[5]),
        },
        rows=int(used.sum()),
        excluded=int((candidates & impossible).sum()),
        candidates=int(candidates.sum()),
        median_abs_error_frac=med,
        worst_abs_error_frac=worst,
        detail={
            "kernel_fixed_s": float(x[4]),
            "impossible_any_shape": float(impossible.sum()),
            "compute_rows": float(use_c.sum()),
            "memory_rows": float(use_m.sum()),
            "compute_median_abs_error_frac": med_c,
            "memory_median_abs_error_frac": med_m,
            "between_rows": float(between.sum()),
            "between_median_abs_error_frac": med_between,
        },
    )


def _one_factor_fit(name: str, ideal: Array, latency_s: Array, candidates: npt.NDArray[np.bool_]) -> OpFit:
    """``name`` = the share of its ideal time (at 100 %) a kernel reaches, ``t = ideal / frac``, over the
    ``candidates`` rows that are not faster than ideal (those are excluded and counted)."""
    impossible = latency_s < ideal
    used = candidates & ~impossible
    (frac,) = _robust_log_fit(lambda x: ideal[used] / x[0], np.array([np.median(ideal[used] / latency_s[used])]),
                              latency_s[used], upper=np.ones(1))  # fmt: skip
    med, worst = _errors(ideal[used] / frac, latency_s[used])
    return OpFit(
        factors={name: float(frac)},
        rows=int(used.sum()),
        excluded=int((candidates & impossible).sum()),
        candidates=int(candidates.sum()),
        median_abs_error_frac=med,
        worst_abs_error_frac=worst,
        detail={"impossible_any_shape": float(impossible.sum())},
    )


def context_attention_flops(batch: Array, isl: Array, heads: Array, head_dim: Array) -> Array:
    """Flops of one causal context-attention kernel (one layer): ``2·batch·heads·head_dim·isl²``,
    i.e. QKᵀ and PV (``2·2·…·isl²``) halved by the causal mask."""
    return 2.0 * batch * heads * head_dim * np.asarray(isl, dtype=np.float64) ** 2


def fit_context_attention(
    batch: Array, isl: Array, heads: Array, head_dim: Array, latency_s: Array, *, peak_flop_per_s: float,
    min_isl: int = MIN_CONTEXT_ISL, min_ideal_s: float = MIN_IDEAL_S,
) -> OpFit:  # fmt: skip
    """``attention_compute_frac`` (the core's convention, see :func:`context_attention_flops`)."""
    batch, isl, heads, head_dim, latency_s = (np.asarray(a, dtype=np.float64) for a in (batch, isl, heads, head_dim, latency_s))
    ideal = context_attention_flops(batch, isl, heads, head_dim) / peak_flop_per_s
    candidates = (isl >= min_isl) & (ideal >= min_ideal_s)
    if not (candidates & (latency_s >= ideal)).any():
        raise ValueError(f"context attention: no row with prompts of {min_isl} tokens or more")
    return _one_factor_fit("attention_compute_frac", ideal, latency_s, candidates)


def kv_read_bytes(batch: Array, context: Array, kv_heads: Array, head_dim: Array, kv_bytes: float) -> Array:
    """Bytes one decode-attention kernel reads: K and V of ``context`` tokens for each sequence."""
    return 2.0 * batch * np.asarray(context, dtype=np.float64) * kv_heads * head_dim * kv_bytes


def fit_kv_read(
    batch: Array, context: Array, kv_heads: Array, head_dim: Array, latency_s: Array, *, kv_bytes: float,
    hbm_bytes_per_s: float, min_ideal_s: float = MIN_IDEAL_S,
) -> OpFit:  # fmt: skip
    """The fraction of HBM bandwidth decode attention reads its KV cache at (``kv_read_frac``)."""
    batch, context, kv_heads, head_dim, latency_s = (
        np.asarray(a, dtype=np.float64) for a in (batch, context, kv_heads, head_dim, latency_s)
    )
    ideal = kv_read_bytes(batch, context, kv_heads, head_dim, kv_bytes) / hbm_bytes_per_s
    candidates = ideal >= min_ideal_s
    if not (candidates & (latency_s >= ideal)).any():
        raise ValueError("generation attention: no row that reads enough KV cache to be bandwidth-bound")
    return _one_factor_fit("kv_read_frac", ideal, latency_s, candidates)


def allreduce_model_s(
    num_gpus: Array, size_bytes: Array, link_bytes_per_s: Array, *, bandwidth_frac: float, latency_s: float
) -> Array:
    """The core's ring all-reduce: ``2(t−1)/t · S / (η_ar·B) + α·log2(t)``."""
    t = np.asarray(num_gpus, dtype=np.float64)
    return 2.0 * (t - 1.0) / t * size_bytes / (bandwidth_frac * link_bytes_per_s) + latency_s * np.log2(t)


def fit_allreduce(
    num_gpus: Array, size_bytes: Array, latency_s: Array, link_bytes_per_s: Array, *,
    min_bytes: float = ALLREDUCE_MIN_BYTES, max_bytes: float = ALLREDUCE_MAX_BYTES,
) -> OpFit:  # fmt: skip
    """``allreduce_bandwidth_frac`` and ``allreduce_latency_s``: least squares on the relative
    error, over every TP degree at once (the core has one pair per GPU)."""
    t, size, lat, link = (np.asarray(a, dtype=np.float64) for a in (num_gpus, size_bytes, latency_s, link_bytes_per_s))
    volume_s = 2.0 * (t - 1.0) / t * size / link  # the ring's time at 100 % of the link
    candidates = (t >= 2) & (size >= min_bytes) & (size <= max_bytes)
    impossible = lat < volume_s
    used = candidates & ~impossible
    if not used.any():
        raise ValueError(f"all-reduce: no row of {min_bytes:.0f} to {max_bytes:.0f} bytes among 2 or more GPUs")
    # (a·volume + α·log2 t) / lat − 1, linear in a = 1/η_ar ≥ 1 and α ≥ 0
    design = np.column_stack([volume_s[used], np.log2(t[used])]) / lat[used, None]
    sol = lsq_linear(design, np.ones(int(used.sum())), bounds=([1.0, 0.0], [np.inf, np.inf]), tol=1e-15, lsmr_tol="auto")
    inv_frac, alpha = (float(v) for v in sol.x)
    frac = 1.0 / inv_frac
    pred = allreduce_model_s(t, size, link, bandwidth_frac=frac, latency_s=alpha)
    med, worst = _errors(pred[used], lat[used])
    detail = {"impossible_any_shape": float(((t >= 2) & impossible).sum())}
    for tp in sorted({int(v) for v in t[used]}):
        sel = used & (t == tp)
        detail[f"tp{tp}_rows"] = float(sel.sum())
        detail[f"tp{tp}_median_abs_error_frac"] = _errors(pred[sel], lat[sel])[0]
    return OpFit(
        factors={"allreduce_bandwidth_frac": frac, "allreduce_latency_s": alpha},
        rows=int(used.sum()),
        excluded=int((candidates & impossible).sum()),
        candidates=int(candidates.sum()),
        median_abs_error_frac=med,
        worst_abs_error_frac=worst,
        detail=detail,
    )


def allreduce_curve(num_gpus: Array, size_bytes: Array, latency_s: Array) -> dict[int, list[tuple[float, float]]]:
    """The measured latency by message size, per TP degree (the median where a size repeats): what
    the core interpolates (:func:`planner.perf.roofline.curve_latency_s`)."""
    out: dict[int, list[tuple[float, float]]] = {}
    for tp in sorted({int(v) for v in num_gpus if v >= 2}):
        sel = num_gpus == tp
        sizes = np.unique(size_bytes[sel])
        points = [(float(b), float(np.median(latency_s[sel & (size_bytes == b)]))) for b in sizes]
        if len(points) >= 2:
            out[tp] = points
    return out


# --------------------------------------------------------------------------- one engine on one GPU

GEMM_DTYPES: dict[str, str] = {"bf16": "bfloat16", "fp8": "fp8", "fp4": "nvfp4"}
"""gemm_dtype of the GEMM rows each precision is fitted on. ``fp8`` is per-tensor scaled fp8, what
vLLM (CutlassFP8ScaledMM), SGLang (sgl_kernel fp8_scaled_mm) and TRT-LLM (QuantAlgo.FP8) run for
an fp8 checkpoint of the ModelOpt / llm-compressor kind or ``--quantization fp8``; ``fp8_block``
(128×128 block scales, DeepSeek-V3 and Qwen3-FP8 checkpoints) can be chosen instead. ``fp4`` is
NVFP4 (weights and activations in 4 bits with an FP8 scale per 16, Blackwell's FP4 tensor cores)."""
FP8_GEMM_CHOICES = ("fp8", "fp8_block")
KV_DTYPES: dict[str, str] = {"bf16": "bfloat16", "fp8": "fp8", "fp4": "fp8"}
"""kv_cache_dtype of the attention rows: the core's fp8 and fp4 runs keep an fp8 KV cache."""
ALLREDUCE_ELEMENT_BYTES: dict[str, float] = {"bfloat16": 2.0, "half": 2.0, "float16": 2.0, "fp16": 2.0}


@dataclass(frozen=True, slots=True, kw_only=True)
class TableUse:
    """One op's fit and where its rows came from."""

    table: str  # <system>/<op>/<engine>/<version>/<file>
    version: str
    selection: str  # the rows fitted: dtype, kernel_source, backend
    fit: OpFit


@dataclass(frozen=True, slots=True, kw_only=True)
class KernelFit:
    """The kernel factors of one (GPU, engine, precision)."""

    gpu: str
    system: str
    engine: str
    precision: Precision
    factors: dict[str, float]  # compute_frac, attention_compute_frac, memory_frac, allreduce_*
    kv_read_frac: float
    ops: dict[str, TableUse]  # gemm, context_attention, generation_attention, allreduce

    def fitted_on(self) -> str:
        """One line naming the tables, versions, rows and each op model's median error."""
        parts = []
        for use in self.ops.values():
            parts.append(
                f"{use.table} [{use.selection}; {use.fit.rows} rows, median |err| {100 * use.fit.median_abs_error_frac:.1f}%]"
            )
        return f"{self.system} {self.engine} op tables, {self.precision}: " + "; ".join(parts)


def _most_rows(kernels: npt.NDArray[np.str_], mask: npt.NDArray[np.bool_]) -> str | None:
    counts = Counter(str(k) for k in kernels[mask])
    if not counts:
        return None
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]


def _fit(table: str, what: str, run: Callable[[], OpFit]) -> OpFit:
    try:
        return run()
    except ValueError as exc:
        raise InputError(f"{table}: {exc} ({what})") from None


def fit_engine(
    tables: EngineTables, *, gpu: str, engine: str, precision: Precision, peak_flop_per_s: float,
    hbm_bytes_per_s: float, link_bytes_per_s: Mapping[int, float], fp8_gemm: str = "fp8",
    min_ideal_s: float = MIN_IDEAL_S,
) -> KernelFit:  # fmt: skip
    """Fit the five kernel factors of ``engine`` on ``gpu`` at ``precision`` from its tables.
    ``link_bytes_per_s`` maps a TP degree to the link bandwidth the core's all-reduce uses there."""
    if tables.gemm is None or tables.context is None or tables.generation is None:
        missing = [n for n, t in (("gemm", tables.gemm), ("context attention", tables.context),
                                  ("generation attention", tables.generation)) if t is None]  # fmt: skip
        raise InputError(f"{tables.system}: no {engine} {' or '.join(missing)} table")
    if fp8_gemm not in FP8_GEMM_CHOICES:
        raise InputError(f"--fp8-gemm {fp8_gemm}: use {' or '.join(FP8_GEMM_CHOICES)}")
    s_w, s_kv = PRECISION_BYTES[precision], KV_BYTES[precision]
    ops: dict[str, TableUse] = {}
    ops["gemm"] = _gemm_use(tables.gemm, fp8_gemm if precision == "fp8" else GEMM_DTYPES[precision],
                            peak_flop_per_s, hbm_bytes_per_s, s_w)  # fmt: skip
    ops["context_attention"] = _context_use(tables.context, KV_DTYPES[precision], peak_flop_per_s, min_ideal_s)
    ops["generation_attention"] = _generation_use(tables.generation, KV_DTYPES[precision], s_kv, hbm_bytes_per_s, min_ideal_s)
    ops["allreduce"] = _allreduce_use(tables.allreduce, tables.nccl, link_bytes_per_s, tables.system, engine)
    g, a, ar = ops["gemm"].fit.factors, ops["context_attention"].fit.factors, ops["allreduce"].fit.factors
    return KernelFit(
        gpu=gpu,
        system=tables.system,
        engine=engine,
        precision=precision,
        factors={
            **{name: g[name] for name in GEMM_FACTORS},
            "attention_compute_frac": a["attention_compute_frac"],
            "allreduce_latency_s": ar["allreduce_latency_s"],
            "allreduce_bandwidth_frac": ar["allreduce_bandwidth_frac"],
        },
        kv_read_frac=ops["generation_attention"].fit.factors["kv_read_frac"],
        ops=ops,
    )


def _gemm_use(t: GemmTable, dtype: str, peak: float, bw: float, s_w: float) -> TableUse:
    rows = t.dtype == dtype
    layer = rows & (t.n >= GEMM_MIN_NK) & (t.k >= GEMM_MIN_NK)
    kernel = _most_rows(t.kernel, layer)
    if kernel is None:
        have = ", ".join(sorted({str(d) for d in t.dtype}))
        raise InputError(f"{t.ref.path}: no {dtype} GEMM rows of layer shapes (the table has {have})")
    sel = rows & (t.kernel == kernel)
    fit = _fit(t.ref.name, f"{dtype}, {kernel}", lambda: fit_gemm(
        t.m[sel], t.n[sel], t.k[sel], t.latency_s[sel], peak_flop_per_s=peak, hbm_bytes_per_s=bw,
        weight_bytes=s_w, act_bytes=s_w,
    ))  # fmt: skip
    return TableUse(table=t.ref.name, version=t.ref.version, selection=f"{dtype}, {kernel}", fit=fit)


def _attention_rows(t: AttentionTable, kv_dtype: str) -> tuple[npt.NDArray[np.bool_], str]:
    rows = (t.kv_dtype == kv_dtype) & (t.window == 0) & (t.head_dim == HEAD_DIM)
    kernel = _most_rows(t.kernel, rows)
    if kernel is None:
        raise InputError(f"{t.ref.path}: no rows with kv_cache_dtype {kv_dtype}, head_dim {HEAD_DIM} and full attention")
    return rows & (t.kernel == kernel), kernel


def _context_use(t: AttentionTable, kv_dtype: str, peak: float, min_ideal_s: float) -> TableUse:
    sel, kernel = _attention_rows(t, kv_dtype)
    fit = _fit(t.ref.name, f"kv {kv_dtype}, {kernel}", lambda: fit_context_attention(
        t.batch[sel], t.isl[sel], t.heads[sel], t.head_dim[sel], t.latency_s[sel], peak_flop_per_s=peak,
        min_ideal_s=min_ideal_s,
    ))  # fmt: skip
    return TableUse(table=t.ref.name, version=t.ref.version, selection=f"kv {kv_dtype}, {kernel}", fit=fit)


def _generation_use(t: AttentionTable, kv_dtype: str, s_kv: float, bw: float, min_ideal_s: float) -> TableUse:
    sel, kernel = _attention_rows(t, kv_dtype)
    fit = _fit(t.ref.name, f"kv {kv_dtype}, {kernel}", lambda: fit_kv_read(
        t.batch[sel], t.context[sel], t.kv_heads[sel], t.head_dim[sel], t.latency_s[sel], kv_bytes=s_kv,
        hbm_bytes_per_s=bw, min_ideal_s=min_ideal_s,
    ))  # fmt: skip
    return TableUse(table=t.ref.name, version=t.ref.version, selection=f"kv {kv_dtype}, {kernel}", fit=fit)


def _allreduce_rows(t: AllReduceTable, links: Mapping[int, float]) -> tuple[npt.NDArray[np.bool_], str]:
    rows = (t.op_name == "all_reduce") & np.isin(t.dtype, list(ALLREDUCE_ELEMENT_BYTES)) & np.isin(t.num_gpus, list(links))
    graph = np.char.endswith(t.backend, "_graph")
    label = ""
    if graph.any():  # the engine's table times its CUDA-graph and its eager path: serving runs the graph
        rows &= graph
        label = str(t.backend[graph][0])
    kernel = _most_rows(t.kernel, rows)
    if kernel is None:
        return rows, label
    rows &= t.kernel == kernel
    dtypes = sorted({str(d) for d in t.dtype[rows]})
    return rows, ", ".join(x for x in (label, kernel, *dtypes) if x)


def _allreduce_use(
    own: AllReduceTable | None, nccl: AllReduceTable | None, links: Mapping[int, float], system: str, engine: str
) -> TableUse:
    for t in (own, nccl):
        if t is None:
            continue
        sel, label = _allreduce_rows(t, links)
        if not sel.any():
            continue
        elem = np.array([ALLREDUCE_ELEMENT_BYTES[str(d)] for d in t.dtype[sel]])
        size = t.message_elements[sel] * elem
        link = np.array([links[int(g)] for g in t.num_gpus[sel]])
        gpus, lat = t.num_gpus[sel], t.latency_s[sel]

        def run(gpus: Array = gpus, size: Array = size, lat: Array = lat, link: Array = link) -> OpFit:
            return replace(fit_allreduce(gpus, size, lat, link), curve=allreduce_curve(gpus, size, lat))

        return TableUse(table=t.ref.name, version=t.ref.version, selection=label, fit=_fit(t.ref.name, label, run))
    raise InputError(f"{system}: no {engine} custom all-reduce table and no NCCL all_reduce rows for TP {sorted(links)}")


@dataclass(frozen=True, slots=True, kw_only=True)
class OpTablesResult:
    """Kernel factors of one engine on every catalog GPU its tables cover."""

    engine: str
    data_dir: str
    fits: dict[str, KernelFit]  # "<gpu>" (bf16) and "<gpu>/fp8"
    skipped: dict[str, str]  # system or "<gpu>/<precision>" -> why it has no fit
    source: str
    as_of: str

    def overlay_entries(self) -> dict[str, dict[str, object]]:
        """GPU id → efficiency-overlay entry (kernel factors only; fp8 set under ``fp8``)."""
        entries: dict[str, dict[str, object]] = {}
        for key in sorted(self.fits, key=lambda k: (k.split("/")[0], "/" in k)):  # bf16 before fp8
            f = self.fits[key]
            entry: dict[str, object] = {name: float(f"{f.factors[name]:.6g}") for name in KERNEL_FACTOR_ORDER}
            curve = f.ops["allreduce"].fit.curve
            if curve:
                entry["allreduce_curve"] = {
                    tp: [[float(f"{b:.6g}"), float(f"{t:.6g}")] for b, t in points] for tp, points in curve.items()
                }
            entry.update(
                fitted_on=f.fitted_on(),
                source=self.source,
                as_of=self.as_of,
                note=(
                    f"Kernel factors only (no per-step overheads). Decode attention reads its KV cache at "
                    f"{f.kv_read_frac:.3f} of HBM bandwidth ({f.ops['generation_attention'].table}); memory_frac "
                    f"is the weight-read share. The all-reduce is bf16 in every precision."
                ),
            )
            if f.precision != "bf16":
                entries.setdefault(f.gpu, {})[f.precision] = entry
            else:
                entries[f.gpu] = {**entry, **entries.get(f.gpu, {})}
        return entries


KERNEL_FACTOR_ORDER = (
    "compute_frac", "attention_compute_frac", "memory_frac", "allreduce_latency_s", "allreduce_bandwidth_frac",
    "gemm_half_dim", "gemm_dim_exp", "overlap_q",
)  # fmt: skip
