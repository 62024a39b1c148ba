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

import datetime as _dt
import functools
import statistics
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

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
        return {"gpu_name": props.name, "driver": driver, "torch": torch.__version__, "cuda": str(torch.version.cuda)}
    return {"gpu_name": "cpu", "driver": "none", "torch": torch.__version__, "cuda": "none"}


class _Stack:
    """``layers`` decoder layers with random bf16 weights in the model's shapes (one TP shard: all of it)."""

    def __init__(self, model: ModelSpec, layers: int, device: str, dtype: Any) -> None:
        torch = _torch()
        self.torch = torch
        self.model = model
        d, hd = model.hidden_size, model.head_dim
        self.h, self.kv = model.num_attention_heads, model.num_kv_heads
        inter = model.intermediate_size
        gen = torch.Generator(device="cpu").manual_seed(0)

        def w(rows: int, cols: int) -> Any:
            return (torch.randn(rows, cols, generator=gen, dtype=torch.float32) * 0.02).to(device=device, dtype=dtype)

        self.layers = [
            {"qkv": w(d, (self.h + 2 * self.kv) * hd), "o": w(self.h * hd, d), "up": w(d, 2 * inter), "down": w(inter, d)}
            for _ in range(layers)
        ]
        self.head = w(d, model.vocab_size)
        self.device, self.dtype = device, dtype

    def _attn_block(self, x: Any, p: dict[str, Any], cache: tuple[Any, Any] | None) -> Any:
        f = self.torch.nn.functional
        hd = self.model.head_dim
        qkv = (f.rms_norm(x, (x.shape[-1],)) @ p["qkv"]).view(x.shape[0], x.shape[1], self.h + 2 * self.kv, hd)
        q = qkv[:, :, : self.h].transpose(1, 2)
        k = qkv[:, :, self.h : self.h + self.kv].transpose(1, 2)
        v = qkv[:, :, self.h + self.kv :].transpose(1, 2)
        if cache is None:  # prefill: causal attention over the prompt
            out = f.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
        else:  # decode: one new token attends over the cached context
            out = f.scaled_dot_product_attention(q, cache[0], cache[1], enable_gqa=True)
        x = x + out.transpose(1, 2).reshape(x.shape[0], x.shape[1], self.h * hd) @ p["o"]
        gate, up = (f.rms_norm(x, (x.shape[-1],)) @ p["up"]).chunk(2, dim=-1)
        return x + (f.silu(gate) * up) @ p["down"]

    def forward(self, x: Any, caches: Sequence[tuple[Any, Any]] | None) -> Any:
        for i, p in enumerate(self.layers):
            x = self._attn_block(x, p, None if caches is None else caches[i])
        return x[:, -1] @ self.head  # logits of the last position

    def caches(self, batch: int, context: int) -> list[tuple[Any, Any]]:
        shape = (batch, self.kv, context, self.model.head_dim)
        return [
            (
                self.torch.randn(shape, device=self.device, dtype=self.dtype),
                self.torch.randn(shape, device=self.device, dtype=self.dtype),
            )
            for _ in self.layers
        ]


def _time_ms(fn: Callable[[], Any], device: str, repeats: int) -> float:
    """Median of ``repeats`` timed calls after warm-up; under a CUDA graph on the GPU."""
    torch = _torch()
    if device != "cuda":
        import time

        fn()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            times.append((time.perf_counter() - start) * 1e3)
        return statistics.median(times)
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(3):
            fn()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        fn()
    for _ in range(3):
        graph.replay()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        graph.replay()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    del graph
    return statistics.median(times)


def measure(
    model: ModelSpec,
    *,
    layers: int,
    prefill: Sequence[tuple[int, int]],
    decode: Sequence[tuple[int, int]],
    device: str = "cuda",
    repeats: int = 10,
    progress: Callable[[str], None] | None = None,
) -> Iterator[Row]:
    """Time prefills of (batch, prompt tokens) and decode steps of (batch, context tokens), each
    scaled from ``layers`` layers to the model's depth."""
    torch = _torch()
    if layers < 1 or layers > model.num_layers:
        raise InputError(f"--layers {layers}: between 1 and {model.num_layers} for {model.id}")
    dtype = torch.bfloat16
    stack = _Stack(model, layers, device, dtype)
    scale = model.num_layers / layers
    head_ms: dict[int, float] = {}

    def head_time(batch: int) -> float:
        if batch not in head_ms:
            x = torch.randn(batch, model.hidden_size, device=device, dtype=dtype)
            head_ms[batch] = _time_ms(lambda: x @ stack.head, device, repeats)
        return head_ms[batch]

    with torch.inference_mode():
        for batch, tokens in prefill:
            x = torch.randn(batch, tokens, model.hidden_size, device=device, dtype=dtype)
            total = _time_ms(functools.partial(stack.forward, x, None), device, repeats)
            ms = (total - head_time(batch)) * scale + head_time(batch)
            if progress:
                progress(f"prefill batch {batch} x {tokens} tokens: {ms:.2f} ms")
            yield Row(phase="prefill", model=model.id, batch=batch, tokens=tokens, context_tokens=0.0, latency_ms=ms)
            del x
        for batch, context in decode:
            caches = stack.caches(batch, context)
            x = torch.randn(batch, 1, model.hidden_size, device=device, dtype=dtype)
            total = _time_ms(functools.partial(stack.forward, x, caches), device, repeats)
            ms = (total - head_time(batch)) * scale + head_time(batch)
            if progress:
                progress(f"decode batch {batch} at {context} tokens: {ms:.2f} ms")
            yield Row(phase="decode", model=model.id, batch=batch, tokens=0, context_tokens=float(context), latency_ms=ms)
            del caches, x
            if device == "cuda":
                torch.cuda.empty_cache()


def csv_text(rows: Sequence[Row], gpu: str, info: dict[str, str], layers: dict[str, int]) -> str:
    """The planner measurement CSV, with provenance in ``#`` header lines."""
    today = _dt.date.today().isoformat()
    lines = [
        f"# measured by planner calibrate run on {today}: {info['gpu_name']}, driver {info['driver']}, "
        f"torch {info['torch']}, CUDA {info['cuda']}",
        "# decoder stacks with random bf16 weights replayed under CUDA graphs, scaled to each model's depth "
        f"(layers timed: {', '.join(f'{m} {n}' for m, n in sorted(layers.items()))}); engine {ENGINE}",
        "phase,model,gpu,tp,batch,tokens,context_tokens,precision,latency_ms,engine",
    ]
    for r in rows:
        lines.append(f"{r.phase},{r.model},{gpu},1,{r.batch},{r.tokens},{r.context_tokens:g},bf16,{r.latency_ms:.4f},{ENGINE}")
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
