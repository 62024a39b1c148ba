"""``planner calibrate run``: time a model-shaped decoder stack on the local GPU.

Random weights (no downloads), the model's real shapes: RMSNorm, fused QKV projection with grouped
KV heads, scaled-dot-product attention (causal for prefill, over a KV cache for decode), output
projection, SwiGLU MLP, and the LM head. A stack of ``layers`` layers is timed and scaled to the
model's depth (``time(stack)·n_L/layers`` plus the head), which lets a 70B-shaped model be measured on
one GPU. Decode steps (and prefills) are replayed under CUDA graphs, so what is measured is the
kernels' time, not a serving engine's scheduling: fit these rows as their own engine.

Every row is one measured step in the planner measurement CSV format (docs/calibration.md), with
``engine = torch-cudagraph`` and the GPU, driver and torch version in the header comments.

torch is an optional dependency (``pip install 'planner[gpu]'``); this module imports it lazily.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import functools
import json
import socket
import statistics
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from planner.calibrate import powersample
from planner.domain import ModelSpec
from planner.errors import InputError

ENGINE = "torch-cudagraph"

DEFAULT_GRID: dict[str, dict[str, Any]] = {
    # model -> layers timed (scaled to the full depth), prefill (batch, tokens) and decode (batch, context)
    "llama-3.1-8b": {
        "layers": 32,
        "prefill": [
            (1, 128),
            (1, 512),
            (1, 1024),
            (1, 2048),
            (1, 4096),
            (1, 8192),
            (2, 512),
            (4, 512),
            (8, 512),
            (16, 512),
            (4, 2048),
        ],
        "decode": [
            (1, 512),
            (1, 2048),
            (1, 8192),
            (8, 2048),
            (16, 2048),
            (32, 2048),
            (64, 1024),
            (64, 2048),
            (128, 1024),
            (128, 2048),
            (256, 512),
            (256, 1024),
        ],
    },
    "llama-3.1-70b": {
        "layers": 8,
        "prefill": [(1, 512), (1, 2048), (1, 4096), (1, 8192), (4, 512), (16, 512)],
        "decode": [(1, 1024), (1, 4096), (16, 2048), (64, 1024), (64, 2048), (128, 2048), (256, 1024)],
    },
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Row:
    phase: str
    model: str
    batch: int
    tokens: int
    context_tokens: float
    latency_ms: float
    tp: int = 1
    precision: str = "bf16"
    power_mean_w: float | None = None  # --power: board power while the step is replayed back to back
    power_peak_w: float | None = None
    power_samples: int = 0


POWER_COLUMNS = ("power_mean_w", "power_peak_w", "power_samples")


def _torch() -> Any:
    try:
        import torch  # optional dependency: imported only here
    except ImportError:
        raise InputError("calibrate run needs PyTorch", hint="pip install 'planner[gpu]'") from None
    return torch


def device_info(device: str) -> dict[str, str]:
    torch = _torch()
    if device == "cuda":
        if not torch.cuda.is_available():
            raise InputError(
                "calibrate run needs an NVIDIA GPU with CUDA, and PyTorch sees none on this machine",
                hint="run it on the GPU you want to calibrate (--device cpu only tests the code path)",
            )
        props = torch.cuda.get_device_properties(0)
        driver = "unknown"
        try:
            import subprocess

            out = subprocess.run(
                ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                capture_output=True,
                text=True,
                timeout=20,
                check=False,
            )
            driver = out.stdout.strip().splitlines()[0] if out.stdout.strip() else "unknown"
        except (OSError, IndexError, subprocess.SubprocessError):
            pass
        return {
            "gpu_name": props.name,
            "driver": driver,
            "torch": torch.__version__,
            "cuda": str(torch.version.cuda),
            "nccl": ".".join(str(v) for v in torch.cuda.nccl.version()) if torch.distributed.is_nccl_available() else "none",
            "gpus": str(torch.cuda.device_count()),
        }
    return {"gpu_name": "cpu", "driver": "none", "torch": torch.__version__, "cuda": "none", "nccl": "none", "gpus": "0"}


def check_setup(device: str, tp: int, precision: str) -> None:
    """Refuse what this machine cannot measure, before any timing starts."""
    torch = _torch()
    if tp not in (1, 2, 4, 8):
        raise InputError(f"--tp {tp}: use 1, 2, 4 or 8 (GPUs of one node)")
    if precision not in ("bf16", "fp8"):
        raise InputError(f"--precision {precision}: use bf16 or fp8")
    if device == "cuda":
        have = torch.cuda.device_count()
        if tp > have:
            raise InputError(f"--tp {tp}: this machine has {have} CUDA GPU(s)", hint="run on a node with that many GPUs")
        if precision == "fp8" and torch.cuda.get_device_capability(0) < (8, 9):
            raise InputError(f"--precision fp8: {torch.cuda.get_device_name(0)} has no fp8 tensor cores (needs Ada or Hopper)")
    elif precision == "fp8":
        raise InputError("--precision fp8 needs a CUDA GPU with fp8 tensor cores (the cpu device has none)")


def check_split(model: ModelSpec, tp: int) -> None:
    """The heads divide by ``tp``, and the KV heads divide by it or it by them (then replicated)."""
    if model.num_attention_heads % tp or (model.num_kv_heads % tp and tp % model.num_kv_heads):
        raise InputError(
            f"--tp {tp}: {model.id}'s {model.num_attention_heads} heads / {model.num_kv_heads} KV heads do not split"
        )


class _Comm:
    """Tensor-parallel communication of one rank: the two all-reduces per layer and the gather of
    the vocabulary-sharded logits, as a Megatron-style engine does; nothing at TP 1."""

    def __init__(self, tp: int) -> None:
        self.tp = tp
        self.dist = _torch().distributed if tp > 1 else None

    def all_reduce(self, x: Any) -> Any:
        if self.dist is not None:
            self.dist.all_reduce(x)
        return x

    def gather_logits(self, shard: Any) -> Any:
        if self.dist is None:
            return shard
        out = shard.new_empty((self.tp * shard.shape[0], *shard.shape[1:]))  # the ranks' shards, stacked
        gather = getattr(self.dist, "all_gather_single", None) or self.dist.all_gather_into_tensor  # renamed in torch 2.13
        gather(out, shard.contiguous())
        return out


class _Stack:
    """``layers`` decoder layers with random weights in the model's shapes, as one rank of a
    ``tp``-way Megatron split: attention heads, KV heads, the MLP and the vocabulary are divided by
    ``tp``; the residual stream is all-reduced after the attention output and after the MLP.
    ``fp8`` stores the projection weights in float8 (e4m3) and runs them through the fp8 GEMM with
    the activations cast per call (static per-tensor scales, as an fp8 checkpoint has); the norms,
    attention and the LM head stay in bf16, as in fp8 serving engines."""

    def __init__(self, model: ModelSpec, layers: int, device: str, *, tp: int = 1, fp8: bool = False) -> None:
        torch = _torch()
        self.torch = torch
        self.model = model
        self.comm = _Comm(tp)
        self.fp8 = fp8
        self.dtype = torch.bfloat16
        d, hd = model.hidden_size, model.head_dim
        check_split(model, tp)
        self.h = model.num_attention_heads // tp
        self.kv = max(1, model.num_kv_heads // tp)  # KV heads replicated when tp exceeds them
        inter = model.intermediate_size // tp
        # random weights made on the device (fast; the values do not change kernel times)
        gen = torch.Generator(device=device).manual_seed(0)

        def w(rows: int, cols: int) -> Any:
            t = torch.randn(rows, cols, generator=gen, device=device, dtype=self.dtype) * 0.02
            if fp8:
                return t.t().contiguous().to(torch.float8_e4m3fn).t()  # column-major, as the fp8 GEMM wants
            return t

        self.layers = [
            {"qkv": w(d, (self.h + 2 * self.kv) * hd), "o": w(self.h * hd, d), "up": w(d, 2 * inter), "down": w(inter, d)}
            for _ in range(layers)
        ]
        vocab_shard = -(-model.vocab_size // tp)
        self.head = torch.randn(d, vocab_shard, generator=gen, device=device, dtype=self.dtype) * 0.02
        self.one = torch.ones((), device=device, dtype=torch.float32)
        self.device = device

    def _mm(self, x: Any, w: Any) -> Any:
        if not self.fp8:
            return x @ w
        torch = self.torch
        lead, k = x.shape[:-1], x.shape[-1]
        a = x.reshape(-1, k)
        rows = a.shape[0]
        if rows % 16:  # the fp8 GEMM wants whole tiles of 16 rows: pad, as engines do for small batches
            a = torch.nn.functional.pad(a, (0, 0, 0, 16 - rows % 16))
        out = torch._scaled_mm(a.to(torch.float8_e4m3fn), w, scale_a=self.one, scale_b=self.one, out_dtype=self.dtype)
        return out[:rows].reshape(*lead, w.shape[1])

    def _layer(self, x: Any, p: dict[str, Any], cache: tuple[Any, Any] | None) -> Any:
        f = self.torch.nn.functional
        hd = self.model.head_dim
        qkv = self._mm(f.rms_norm(x, (x.shape[-1],)), p["qkv"]).view(x.shape[0], x.shape[1], self.h + 2 * self.kv, hd)
        q = qkv[:, :, : self.h].transpose(1, 2)
        k = qkv[:, :, self.h : self.h + self.kv].transpose(1, 2)
        v = qkv[:, :, self.h + self.kv :].transpose(1, 2)
        if cache is None:  # prefill: causal attention over the prompt
            out = f.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
        else:  # decode: one new token attends over the cached context
            out = f.scaled_dot_product_attention(q, cache[0], cache[1], enable_gqa=True)
        x = x + self.comm.all_reduce(self._mm(out.transpose(1, 2).reshape(x.shape[0], x.shape[1], self.h * hd), p["o"]))
        gate, up = self._mm(f.rms_norm(x, (x.shape[-1],)), p["up"]).chunk(2, dim=-1)
        return x + self.comm.all_reduce(self._mm(f.silu(gate) * up, p["down"]))

    def forward(self, x: Any, caches: Sequence[tuple[Any, Any]] | None) -> Any:
        for i, p in enumerate(self.layers):
            x = self._layer(x, p, None if caches is None else caches[i])
        return self.logits(x[:, -1])

    def logits(self, last: Any) -> Any:
        return self.comm.gather_logits(last @ self.head)

    def caches(self, batch: int, context: int) -> list[tuple[Any, Any]]:
        """The KV cache of ``context`` tokens per sequence. An fp8 cache is stood in for by a bf16
        cache of half the tokens: the same bytes, which is what a decode attention step costs
        (PyTorch's attention kernels read no fp8)."""
        tokens = max(1, context // 2) if self.fp8 else context
        shape = (batch, self.kv, tokens, self.model.head_dim)
        return [
            (
                self.torch.randn(shape, device=self.device, dtype=self.dtype),
                self.torch.randn(shape, device=self.device, dtype=self.dtype),
            )
            for _ in self.layers
        ]


def _time_ms(fn: Callable[[], Any], device: str, repeats: int, comm: _Comm | None = None) -> float:
    """Median of ``repeats`` timed calls after warm-up; under a CUDA graph on the GPU. With TP the
    ranks meet at a barrier before each timed call, and the slowest rank's median counts."""
    return _time(fn, device, repeats, comm)[0]


PowerProbe = Callable[[Callable[[], object], Callable[[], object], float], powersample.PowerReading]


def _time(
    fn: Callable[[], Any], device: str, repeats: int, comm: _Comm | None = None, power: PowerProbe | None = None
) -> tuple[float, powersample.PowerReading | None]:
    """:func:`_time_ms`, and with ``power`` (TP 1) the step then replayed back to back while the
    board power is sampled: ``power(replay, sync, step_s)``."""
    torch = _torch()
    reading = None
    dist = comm.dist if comm is not None else None

    def sync() -> None:
        if device == "cuda":
            torch.cuda.synchronize()
        if dist is not None:
            dist.barrier()
            if device == "cuda":
                torch.cuda.synchronize()

    times = []
    if device != "cuda":
        import time

        fn()
        for _ in range(repeats):
            sync()
            start = time.perf_counter()
            fn()
            times.append((time.perf_counter() - start) * 1e3)
        if power is not None:
            reading = power(fn, sync, statistics.median(times) / 1e3)
    else:
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(3):
                fn()
        torch.cuda.current_stream().wait_stream(stream)
        sync()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            fn()
        for _ in range(3):
            graph.replay()
        for _ in range(repeats):
            sync()
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            graph.replay()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end))
        if power is not None:
            reading = power(graph.replay, sync, statistics.median(times) / 1e3)
        del graph
    ms = statistics.median(times)
    if dist is None:
        return ms, reading
    slowest = torch.tensor([ms], dtype=torch.float64, device=device)
    dist.all_reduce(slowest, op=dist.ReduceOp.MAX)
    return float(slowest.item()), reading


def measure(
    model: ModelSpec,
    *,
    layers: int,
    prefill: Sequence[tuple[int, int]],
    decode: Sequence[tuple[int, int]],
    device: str = "cuda",
    repeats: int = 10,
    tp: int = 1,
    precision: str = "bf16",
    progress: Callable[[str], None] | None = None,
    power: PowerProbe | None = None,
) -> list[Row]:
    """Time prefills of (batch, prompt tokens) and decode steps of (batch, context tokens), each
    scaled from ``layers`` layers to the model's depth. ``tp`` > 1 starts one process per GPU (NCCL;
    gloo on the cpu device) that each time their shard, collectives included. ``power`` (TP 1
    only; see :func:`power_probe`) also samples board power during each step, replayed back to back."""
    if layers < 1 or layers > model.num_layers:
        raise InputError(f"--layers {layers}: between 1 and {model.num_layers} for {model.id}")
    check_setup(device, tp, precision)
    check_split(model, tp)  # here: a rank's error would surface as a spawn failure
    if power is not None and tp > 1:
        raise InputError("--power: measured at TP 1 only (one GPU's board power per step)")
    job = _Job(model, layers, tuple(prefill), tuple(decode), device, repeats, tp, precision)
    if tp == 1:
        return _run_rank(job, 0, progress, power)
    with socket.socket() as sock:  # a free port for the rendezvous
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with tempfile.TemporaryDirectory(prefix="planner-tp-") as tmp:
        result = f"{tmp}/rows.json"
        try:
            _torch().multiprocessing.spawn(_rank_main, args=(job, port, result, progress is not None), nprocs=tp, join=True)
        except Exception as exc:  # ProcessRaisedException/ProcessExitedException: keep the rank's own last line
            text = str(exc).strip()
            last = text.splitlines()[-1] if text else type(exc).__name__
            raise InputError(f"--tp {tp}: a rank of the {model.id} run failed: {last}") from None
        with open(result, encoding="utf-8") as fh:
            rows = [Row(**r) for r in json.load(fh)]
    return rows


@dataclass(frozen=True, slots=True)
class _Job:
    model: ModelSpec
    layers: int
    prefill: tuple[tuple[int, int], ...]
    decode: tuple[tuple[int, int], ...]
    device: str
    repeats: int
    tp: int
    precision: str


def _rank_main(rank: int, job: _Job, port: int, result: str, verbose: bool) -> None:
    """One TP rank (a spawned process): join the group, time, and (rank 0) write the rows."""
    torch = _torch()
    if job.device == "cuda":
        torch.cuda.set_device(rank)
    torch.distributed.init_process_group(
        "nccl" if job.device == "cuda" else "gloo",
        init_method=f"tcp://127.0.0.1:{port}",
        rank=rank,
        world_size=job.tp,
        **({"device_id": torch.device("cuda", rank)} if job.device == "cuda" else {}),
    )
    try:

        def say(line: str) -> None:
            sys.stderr.write(line + "\n")
            sys.stderr.flush()

        rows = _run_rank(job, rank, say if verbose and rank == 0 else None)
        if rank == 0:
            with open(result, "w", encoding="utf-8") as fh:
                json.dump([dataclasses.asdict(r) for r in rows], fh)
    finally:
        torch.distributed.destroy_process_group()


def _run_rank(job: _Job, rank: int, progress: Callable[[str], None] | None, power: PowerProbe | None = None) -> list[Row]:
    torch = _torch()
    model, device = job.model, job.device
    device_str = f"cuda:{rank}" if device == "cuda" else "cpu"
    stack = _Stack(model, job.layers, device_str, tp=job.tp, fp8=job.precision == "fp8")
    dtype = stack.dtype
    scale = model.num_layers / job.layers
    head_ms: dict[int, float] = {}
    rows: list[Row] = []
    where = f"TP {job.tp} {job.precision}"

    def time_ms(fn: Callable[[], Any]) -> float:
        return _time_ms(fn, device, job.repeats, stack.comm)

    def timed(fn: Callable[[], Any]) -> tuple[float, powersample.PowerReading | None]:
        return _time(fn, device, job.repeats, stack.comm, power)

    def head_time(batch: int) -> float:
        if batch not in head_ms:
            x = torch.randn(batch, model.hidden_size, device=device_str, dtype=dtype)
            head_ms[batch] = time_ms(functools.partial(stack.logits, x))
        return head_ms[batch]

    def row(phase: str, batch: int, tokens: int, context: int, measured: tuple[float, powersample.PowerReading | None]) -> Row:
        total, reading = measured
        ms = (total - head_time(batch)) * scale + head_time(batch)
        if progress:
            what = f"{tokens} tokens" if phase == "prefill" else f"at {context} tokens"
            watts = f", {reading.mean_w:.0f} W mean, {reading.peak_w:.0f} W peak" if reading else ""
            progress(f"{where} {phase} batch {batch} {what}: {ms:.2f} ms{watts}")
        return Row(
            phase=phase,
            model=model.id,
            batch=batch,
            tokens=tokens,
            context_tokens=float(context),
            latency_ms=ms,
            tp=job.tp,
            precision=job.precision,
            power_mean_w=reading.mean_w if reading else None,
            power_peak_w=reading.peak_w if reading else None,
            power_samples=reading.samples if reading else 0,
        )

    with torch.inference_mode():
        for batch, tokens in job.prefill:
            x = torch.randn(batch, tokens, model.hidden_size, device=device_str, dtype=dtype)
            rows.append(row("prefill", batch, tokens, 0, timed(functools.partial(stack.forward, x, None))))
            del x
        for batch, context in job.decode:
            caches = stack.caches(batch, context)
            x = torch.randn(batch, 1, model.hidden_size, device=device_str, dtype=dtype)
            rows.append(row("decode", batch, 0, context, timed(functools.partial(stack.forward, x, caches))))
            del caches, x
            if device == "cuda":
                torch.cuda.empty_cache()
    return rows


def power_probe(
    read_w: Callable[[], float],
    *,
    hz: float = powersample.DEFAULT_HZ,
    seconds: float = powersample.DEFAULT_SECONDS,
    settle_s: float = powersample.DEFAULT_SETTLE_S,
) -> PowerProbe:
    """What :func:`measure` calls per step with ``power``: replay it for ``seconds`` (after
    ``settle_s``) while a sampler polls ``read_w`` at ``hz``."""

    def probe(replay: Callable[[], object], sync: Callable[[], object], step_s: float) -> powersample.PowerReading:
        sampler = powersample.PowerSampler(read_w, hz=hz)
        return powersample.sustain(replay, sync, step_s, sampler, seconds=seconds, settle_s=settle_s)

    return probe


def power_header(fields: dict[str, str | float]) -> str:
    """The ``# power:`` provenance line: ``key=value`` pairs (idle watts, NVML version, sampling)."""
    return "# power: " + " ".join(f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}" for k, v in fields.items())


def csv_text(
    rows: Sequence[Row], gpu: str, info: dict[str, str], layers: dict[str, int], power: dict[str, str | float] | None = None
) -> str:
    """The planner measurement CSV, with provenance in ``#`` header lines; with ``power`` (the
    ``# power:`` line's fields) or rows that carry power, the power columns too."""
    today = _dt.date.today().isoformat()
    lines = [
        f"# measured by planner calibrate run on {today}: {info['gpu_name']}, driver {info['driver']}, "
        f"torch {info['torch']}, CUDA {info['cuda']}, NCCL {info.get('nccl', 'none')}",
        "# decoder stacks with random weights replayed under CUDA graphs, scaled to each model's depth "
        f"(layers timed: {', '.join(f'{m} {n}' for m, n in sorted(layers.items()))}); engine {ENGINE}",
        "# tp > 1: one process per GPU (Megatron split, NCCL all-reduces inside the graph); fp8: e4m3 projection "
        "weights through the fp8 GEMM, bf16 attention over a KV cache of the fp8 cache's bytes",
    ]
    with_power = power is not None or any(r.power_mean_w is not None for r in rows)
    if power is not None:
        lines.append(power_header(power))
    columns = "phase,model,gpu,tp,batch,tokens,context_tokens,precision,latency_ms,engine"
    lines.append(columns + ("," + ",".join(POWER_COLUMNS) if with_power else ""))
    for r in rows:
        line = (
            f"{r.phase},{r.model},{gpu},{r.tp},{r.batch},{r.tokens},{r.context_tokens:g},{r.precision},"
            f"{r.latency_ms:.4f},{ENGINE}"
        )
        if with_power:
            if r.power_mean_w is None or r.power_peak_w is None:
                line += ",,,0"
            else:
                line += f",{r.power_mean_w:.1f},{r.power_peak_w:.1f},{r.power_samples}"
        lines.append(line)
    return "\n".join(lines) + "\n"


@dataclass(frozen=True, slots=True, kw_only=True)
class Component:
    """One timed kernel: a GEMM or an attention call, with what it achieved."""

    kind: str  # gemm | attention-prefill | attention-decode
    dtype: str  # bf16 | fp8
    shape: str
    latency_ms: float
    flops: float
    bytes_moved: float

    def tflop_per_s(self) -> float:
        return self.flops / (self.latency_ms * 1e-3) / 1e12

    def gbyte_per_s(self) -> float:
        return self.bytes_moved / (self.latency_ms * 1e-3) / 1e9


def components(device: str = "cuda", repeats: int = 20) -> list[Component]:
    """GEMMs at prefill (many tokens) and decode (few tokens) shapes of a 70B layer, in bf16 and
    (where the GPU has it) fp8, and attention for prefill (causal, one long prompt) and decode (one
    token over a KV cache): the achieved FLOP/s and bytes/s that the fitted efficiencies summarize."""
    torch = _torch()
    bf16 = torch.bfloat16
    out: list[Component] = []
    with torch.inference_mode():
        for tokens in (1, 16, 64, 256, 1024, 4096, 8192):
            for n, k in ((10240, 8192), (57344, 8192), (8192, 28672)):  # QKV, gate+up, down of Llama-70B
                a = torch.randn(tokens, k, device=device, dtype=bf16)
                w = torch.randn(k, n, device=device, dtype=bf16)
                ms = _time_ms(functools.partial(torch.matmul, a, w), device, repeats)
                out.append(
                    Component(
                        kind="gemm",
                        dtype="bf16",
                        shape=f"{tokens}x{k}x{n}",
                        latency_ms=ms,
                        flops=2.0 * tokens * k * n,
                        bytes_moved=2.0 * (tokens * k + k * n + tokens * n),
                    )
                )
                fp8 = getattr(torch, "float8_e4m3fn", None)
                if device == "cuda" and fp8 is not None and tokens >= 16:
                    try:
                        a8 = a.to(fp8)
                        w8 = w.t().contiguous().to(fp8).t()  # column-major, as the fp8 kernel wants
                        one = torch.tensor(1.0, device=device)
                        call = functools.partial(torch._scaled_mm, a8, w8, scale_a=one, scale_b=one, out_dtype=bf16)
                        ms8 = _time_ms(call, device, repeats)
                        out.append(
                            Component(
                                kind="gemm",
                                dtype="fp8",
                                shape=f"{tokens}x{k}x{n}",
                                latency_ms=ms8,
                                flops=2.0 * tokens * k * n,
                                bytes_moved=tokens * k + k * n + 2.0 * tokens * n,
                            )
                        )
                    except (RuntimeError, TypeError):
                        pass
                del a, w
        f = torch.nn.functional
        heads, kv, hd = 64, 8, 128
        for length in (1024, 4096, 8192):
            q = torch.randn(1, heads, length, hd, device=device, dtype=bf16)
            kk = torch.randn(1, kv, length, hd, device=device, dtype=bf16)
            vv = torch.randn(1, kv, length, hd, device=device, dtype=bf16)  # its own memory: no L2 reuse of K
            call = functools.partial(f.scaled_dot_product_attention, q, kk, vv, is_causal=True, enable_gqa=True)
            ms = _time_ms(call, device, repeats)
            out.append(
                Component(
                    kind="attention-prefill",
                    dtype="bf16",
                    shape=f"1x{heads}h/{kv}kv x{length}",
                    latency_ms=ms,
                    flops=2.0 * heads * hd * length * length,
                    bytes_moved=2.0 * (heads + 2 * kv) * length * hd * 2,
                )
            )
        for batch, context in ((1, 4096), (16, 2048), (64, 2048), (128, 4096)):
            q = torch.randn(batch, heads, 1, hd, device=device, dtype=bf16)
            kk = torch.randn(batch, kv, context, hd, device=device, dtype=bf16)
            vv = torch.randn(batch, kv, context, hd, device=device, dtype=bf16)
            call = functools.partial(f.scaled_dot_product_attention, q, kk, vv, enable_gqa=True)
            ms = _time_ms(call, device, repeats)
            out.append(
                Component(
                    kind="attention-decode",
                    dtype="bf16",
                    shape=f"{batch}x{heads}h/{kv}kv x{context}",
                    latency_ms=ms,
                    flops=4.0 * batch * heads * hd * context,
                    bytes_moved=2.0 * batch * 2 * kv * context * hd,
                )
            )
    return out


def components_csv(rows: Sequence[Component], info: dict[str, str]) -> str:
    lines = [
        f"# measured by planner microbench on {_dt.date.today().isoformat()}: {info['gpu_name']}, driver {info['driver']}, "
        f"torch {info['torch']}, CUDA {info['cuda']}; median of timed CUDA-graph replays",
        "kind,dtype,shape,latency_ms,tflop_per_s,gbyte_per_s",
    ]
    for r in rows:
        lines.append(f"{r.kind},{r.dtype},{r.shape},{r.latency_ms:.5f},{r.tflop_per_s():.2f},{r.gbyte_per_s():.1f}")
    return "\n".join(lines) + "\n"
