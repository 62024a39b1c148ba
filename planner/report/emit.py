"""``planner size --emit ENGINE DIR``: the files that deploy a plan, as pure text (nothing here writes).

For every pool of the plan: the command that starts one replica (``launch/<pool>.sh``) with the engine settings the
plan assumes, and a Kubernetes manifest skeleton (``k8s/<pool>.yaml``: a Deployment; for Dynamo one
DynamoGraphDeployment for the whole graph, ``k8s/dynamo-graph.yaml``); beside them ``README.txt`` (what each file
is, the plan, where each setting comes from, what is left to do) and ``plan-summary.json`` (the same as data).

Every flag written is one that the engine's parser defines at the release the plan's engine profile names
(``catalogs/engine_flags.yaml``, :mod:`planner.io.engine_flags`); a setting planner cannot state with a documented
flag is left as a TODO in the README and the files. Each setting is marked with where it comes from:

* ``[plan]`` a number of the plan: tensor/expert/data-parallel layout, replicas, max batch, chunked-prefill token
  budget of a co-located pool, precision;
* ``[profile]`` the engine profile the plan was sized with (``catalogs/engines.yaml``): the memory fraction, the
  default token budget of the GPU;
* ``[catalog]`` the model catalog (the Hugging Face checkpoint);
* ``[emit]`` planner's choice for the engine where the plan has no number (the KV connector, the listen address).

Anything not written is the engine's default at that release. The output depends only on its inputs (no dates,
no random names): the same plan gives the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from planner.domain import Deployment, EngineSpec, GpuSpec, LinkSpec, ModelSpec, Pool, Precision
from planner.errors import InputError
from planner.io.engine_flags import EngineFlags, FlagProgram

__all__ = [
    "EMIT_TARGETS",
    "EmitInputs",
    "Rendered",
    "emit_backend",
    "render",
]

EMIT_TARGETS = ("vllm", "sglang", "dynamo")
"""What ``--emit`` writes for: a plain engine, or Dynamo with the plan's engine as its backend."""

_DYNAMO_BACKENDS = ("vllm", "sglang")
_SERVICE_PREFIX = {"vllm": "Vllm", "sglang": "Sglang"}
_ROLE_WORD = {"prefill": "Prefill", "decode": "Decode", "colocated": ""}
_PORT = {"vllm": 8000, "sglang": 30000}  # each engine's default listen port (FrontendArgs.port, ServerArgs.port)
_K8S_NAME_MAX = 63
_ENGINE_NAME = {"vllm": "vLLM", "sglang": "SGLang"}


@dataclass(frozen=True, slots=True, kw_only=True)
class EmitInputs:
    """What the rendering needs of a plan: its deployment and the catalog entries it names."""

    deployment: Deployment
    model: ModelSpec
    precision: Precision
    engine: EngineSpec  # the profile the plan was sized with
    gpus: Mapping[str, GpuSpec]
    links: Mapping[str, LinkSpec]
    kv_tokens: Mapping[str, int] = field(default_factory=dict)  # pool key -> KV-cache tokens per replica (planner's fit)
    longest_request_tokens: int = 0  # the longest class's input p99 + output p99
    assumptions: tuple[str, ...] = ()  # what the plan assumes that no emitted flag sets (speculative decoding, ...)
    workload: str = ""  # the workload file, or "flags"


@dataclass(frozen=True, slots=True, kw_only=True)
class Rendered:
    """The files of one ``--emit``: relative path -> text, which of them are executable, and a summary."""

    target: str  # vllm | sglang | dynamo
    backend: str  # the engine that runs the pools (Dynamo: its backend)
    label: str  # "vLLM 0.12.0", "Dynamo 0.8.0 (vLLM 0.12.0)"
    files: Mapping[str, str]
    executable: frozenset[str]
    todo: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Arg:
    flag: str  # "" for a positional value
    value: str | None  # None for a switch
    origin: str  # plan | profile | catalog | emit
    note: str

    def argv(self) -> list[str]:
        return [v for v in (self.flag, self.value) if v]


@dataclass(frozen=True, slots=True, kw_only=True)
class _PoolOut:
    pool: Pool
    name: str  # slug, unique in the plan
    service: str  # Dynamo service name
    args: tuple[_Arg, ...]
    todo: tuple[str, ...]
    env: tuple[tuple[str, str], ...]  # launch-script variables: (name, what it must be)


# ----------------------------------------------------------------------------------------------- choosing


def emit_backend(target: str, engine: EngineSpec, flags: Mapping[str, EngineFlags]) -> str:
    """The engine that runs the pools for ``--emit target`` of a plan sized under ``engine``, or one
    :class:`InputError` saying why that combination cannot be emitted."""
    if target not in EMIT_TARGETS:
        raise InputError(f"--emit {target}: use one of {', '.join(EMIT_TARGETS)} (or auto: the plan's engine)")
    sized = f"{engine.name} {engine.version} ({engine.label})"
    if target == "dynamo":
        dyn = flags["dynamo"]
        if engine.id not in _DYNAMO_BACKENDS:
            raise InputError(
                f"--emit dynamo: the plan was sized under {sized}; planner emits Dynamo {dyn.version} only with its "
                f"{' or '.join(_DYNAMO_BACKENDS)} backend (no flag list of the others is in catalogs/engine_flags.yaml)",
                hint="size with --engine vllm or --engine sglang",
            )
        pinned = dyn.backends.get(engine.id, "")
        if not (pinned == engine.version or pinned.startswith(engine.version + ".post")):
            raise InputError(
                f"--emit dynamo: Dynamo {dyn.version} runs {flags[engine.id].name} {pinned or '(none)'}, "
                f"the plan's profile is {sized}"
            )
        return engine.id
    if engine.id != target:
        raise InputError(
            f"--emit {target}: the plan was sized under {sized}, whose batch sizes and timings are not {flags[target].name}'s",
            hint=f"size with --engine {target} (or emit {engine.id} or dynamo)"
            if engine.id in EMIT_TARGETS
            else f"size with --engine {target}",
        )
    known = flags[target]
    if engine.version != known.version:
        raise InputError(
            f"--emit {target}: the plan's profile is {sized}; catalogs/engine_flags.yaml has the flags of "
            f"{known.name} {known.version} only",
            hint=f"size with --engine {target}@{known.version}",
        )
    return target


# ----------------------------------------------------------------------------------------------- settings


def _per(total: int, groups: int) -> int:
    return max(1, math.ceil(total / groups))


def _precision_args(backend: str, precision: Precision) -> tuple[list[_Arg], list[str]]:
    todo: list[str] = []
    if precision == "bf16":
        note = "precision bf16: bf16 weights, activations and KV cache (a checkpoint's own quantization still applies)"
        return [_Arg("--dtype", "bfloat16", "plan", note)], todo
    kv = "fp8" if backend == "vllm" else "fp8_e4m3"
    args = [_Arg("--kv-cache-dtype", kv, "plan", f"precision {precision}: an fp8 KV cache (1 byte per element)")]
    if precision == "fp8":
        args.insert(
            0,
            _Arg(
                "--quantization",
                "fp8",
                "plan",
                "precision fp8: fp8 weights (an fp8 checkpoint is read as it is, a bf16 one quantized when loaded)",
            ),
        )
    else:
        todo.append(
            "precision fp4: the plan assumes NVFP4 weights; point the model at an NVFP4 checkpoint (the engine reads its "
            "quantization from the checkpoint's config); no quantization flag is emitted"
        )
    return args, todo


def _pool_args(
    backend: str, target: str, pool: Pool, name: str, inp: EmitInputs
) -> tuple[list[_Arg], list[str], list[tuple[str, str]]]:
    """The engine settings of one replica of ``pool``: (args, todo, environment)."""
    hf = inp.model.hf_id or ""
    a, e = pool.attention_dp, pool.moe_ep
    if pool.pp > 1:
        raise InputError(
            f"--emit {target}: pool {pool.key} runs each replica as {pool.pp} pipeline stages of {pool.tp // pool.pp} "
            "GPUs; --emit does not write pipeline-parallel launches (--pipeline-parallel-size across nodes)"
        )
    if pool.nodes_per_replica > 1:
        raise InputError(
            f"--emit {target}: pool {pool.key} runs each replica across {pool.nodes_per_replica} nodes "
            f"(expert parallel over {pool.tp} GPUs); --emit writes single-node launches only, so a multi-node "
            "replica's launch (one process group over the nodes: --nnodes, --node-rank, the rendezvous address) is not written"
        )
    todo: list[str] = []
    env: list[tuple[str, str]] = []
    args: list[_Arg] = []
    limits = inp.engine.limits(pool.gpu)
    disagg = pool.role in ("prefill", "decode")
    if backend == "vllm":
        if e not in (1, pool.tp):
            raise InputError(
                f"--emit {target}: pool {pool.key} splits the experts over {e} groups of its {pool.tp} GPUs; vLLM "
                f"{inp.engine.version} runs experts tensor-parallel over all of a replica's GPUs, or expert-parallel "
                f"over all of them (--enable-expert-parallel: EP = TP x DP), not {e} of {pool.tp}"
            )
        model = (
            _Arg("", hf, "catalog", f"{inp.model.id}'s checkpoint (hf_id)")
            if target == "vllm"
            else _Arg("--model", hf, "catalog", f"{inp.model.id}'s checkpoint (hf_id)")
        )
        args.append(model)
        args.append(_Arg("--tensor-parallel-size", str(pool.tp // a), "plan", _tp_note(pool)))
        if a > 1:
            args.append(_Arg("--data-parallel-size", str(a), "plan", f"{a} data-parallel attention groups per replica"))
        if e > 1:
            args.append(
                _Arg("--enable-expert-parallel", None, "plan", f"experts split over all {pool.tp} GPUs (EP {e} = TP x DP)")
            )
        seqs = _per(pool.max_batch, a)
        note = f"max batch of {pool.max_batch} per replica"
        if a > 1:
            note += f"; vLLM takes it per data-parallel rank: {seqs} on each of {a}"
            if seqs * a != pool.max_batch:
                note += f", {seqs * a} per replica (the plan's {pool.max_batch} rounded up)"
        args.append(_Arg("--max-num-seqs", str(seqs), "plan", note))
        if pool.token_budget is not None:
            budget = _per(pool.token_budget, a)
            args.append(
                _Arg(
                    "--max-num-batched-tokens",
                    str(max(budget, seqs)),
                    "plan",
                    f"chunked-prefill token budget {pool.token_budget} per replica"
                    + (f", per data-parallel rank {budget}" if a > 1 else ""),
                )
            )
        else:
            args.append(
                _Arg(
                    "--max-num-batched-tokens",
                    str(limits.max_num_batched_tokens),
                    "profile",
                    f"vLLM's default token budget on {pool.gpu}"
                    + (
                        "; the plan's prefill runs each prompt whole, longer prompts are chunked at this budget"
                        if pool.role == "prefill"
                        else ""
                    ),
                )
            )
        args.append(
            _Arg(
                "--gpu-memory-utilization",
                _frac(inp.engine.gpu_memory_utilization_frac),
                "profile",
                "the share of GPU memory the plan's memory fit gives the engine",
            )
        )
        p_args, p_todo = _precision_args("vllm", inp.precision)
        args += p_args
        todo += p_todo
        if disagg and target == "vllm":
            args.append(
                _Arg(
                    "--kv-transfer-config",
                    json.dumps({"kv_connector": "NixlConnector", "kv_role": "kv_both"}, separators=(",", ":")),
                    "emit",
                    "KV cache sent between the pools by NixlConnector (NIXL over UCX); a connector needs a kv_role, which "
                    "NixlConnector does not read at 0.12.0: kv_both serves either side",
                )
            )
            env.append(
                ("VLLM_NIXL_SIDE_CHANNEL_HOST", "this host's address that the other pool reaches (vLLM's default is localhost)")
            )
        if disagg and target == "dynamo":
            args.append(
                _Arg(
                    "--is-prefill-worker" if pool.role == "prefill" else "--is-decode-worker",
                    None,
                    "plan",
                    f"a {pool.role} worker",
                )
            )
            args.append(_Arg("--connector", "nixl", "emit", "the KV cache moves by NIXL (Dynamo's default connector)"))
        kv_tok = inp.kv_tokens.get(pool.key)
        if kv_tok is not None and inp.model.max_context_tokens > kv_tok // a:
            todo.append(
                f"pool {name}: planner's memory fit leaves about {kv_tok // a:,} KV-cache tokens per vLLM engine, "
                f"fewer than {inp.model.id}'s context of {inp.model.max_context_tokens:,} tokens; vLLM refuses to start "
                f"unless one sequence of --max-model-len fits: add --max-model-len no shorter than your longest request "
                f"(the workload's longest class: {inp.longest_request_tokens:,} tokens at p99)"
            )
    else:  # sglang
        args.append(_Arg("--model-path", hf, "catalog", f"{inp.model.id}'s checkpoint (hf_id)"))
        args.append(_Arg("--tp-size", str(pool.tp), "plan", _tp_note(pool)))
        if a > 1:
            args.append(_Arg("--dp-size", str(a), "plan", f"{a} data-parallel attention groups per replica"))
            args.append(
                _Arg("--enable-dp-attention", None, "plan", f"attention data-parallel over {a} groups of {pool.tp // a} GPUs")
            )
        if e > 1:
            args.append(
                _Arg("--ep-size", str(e), "plan", f"routed experts split over {e} groups (each expert over {pool.tp // e} GPUs)")
            )
        running = max(pool.max_batch, a if a > 1 else 1)
        note = f"max batch of {pool.max_batch} per replica"
        if running != pool.max_batch:
            note += f"; raised to {running}: SGLang divides it by --dp-size and refuses 0 per rank"
        args.append(_Arg("--max-running-requests", str(running), "plan", note))
        if pool.token_budget is not None:
            args.append(
                _Arg(
                    "--chunked-prefill-size",
                    str(pool.token_budget),
                    "plan",
                    f"chunked-prefill token budget {pool.token_budget} per replica",
                )
            )
        else:
            args.append(
                _Arg(
                    "--chunked-prefill-size",
                    str(limits.max_num_batched_tokens),
                    "profile",
                    f"SGLang's default chunk on {pool.gpu}"
                    + (
                        "; the plan's prefill runs each prompt whole, longer prompts are chunked at this size"
                        if pool.role == "prefill"
                        else ""
                    ),
                )
            )
        if a > 1:
            todo.append(f"pool {name}: with DP attention SGLang divides --chunked-prefill-size by --dp-size ({a}) per rank")
        args.append(
            _Arg(
                "--mem-fraction-static",
                _frac(inp.engine.gpu_memory_utilization_frac),
                "profile",
                "the share of GPU memory the plan's memory fit gives the engine (weights and KV pool)",
            )
        )
        p_args, p_todo = _precision_args("sglang", inp.precision)
        args += p_args
        todo += p_todo
        if disagg:
            args.append(_Arg("--disaggregation-mode", pool.role, "plan", f"a {pool.role} server"))
            backend_name = "nixl" if target == "dynamo" else "mooncake"
            why = (
                "NIXL, which Dynamo's SGLang extra installs"
                if target == "dynamo"
                else "Mooncake, SGLang's default (install mooncake-transfer-engine); RDMA devices: "
                "--disaggregation-ib-device (see README)"
            )
            args.append(_Arg("--disaggregation-transfer-backend", backend_name, "emit", f"KV cache sent by {why}"))
        if target == "sglang":
            args.append(
                _Arg(
                    "--host",
                    "0.0.0.0",
                    "emit",
                    "listen on every interface so that the router reaches it (SGLang's default is 127.0.0.1)",
                )
            )
    return args, todo, env


def _tp_note(pool: Pool) -> str:
    if pool.attention_dp > 1:
        return f"replica of {pool.tp} GPUs; attention tensor-parallel over {pool.tp // pool.attention_dp} GPUs per group"
    return f"replica of {pool.tp} GPUs, tensor parallel"


def _frac(x: float) -> str:
    return repr(float(x))


# ----------------------------------------------------------------------------------------------- naming


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"


def _k8s_name(text: str) -> str:
    """A DNS-1123 label: lowercase, digits and '-', at most 63 characters (a long one keeps a hash of the rest)."""
    s = _slug(text)
    if len(s) <= _K8S_NAME_MAX:
        return s
    digest = hashlib.sha256(s.encode()).hexdigest()[:8]
    return f"{s[: _K8S_NAME_MAX - 9].rstrip('-')}-{digest}"


def _pool_names(pools: Sequence[Pool]) -> list[str]:
    names: list[str] = []
    for p in pools:
        base = _k8s_name(p.key)
        name, i = base, 2
        while name in names:
            name = _k8s_name(f"{base}-{i}")
            i += 1
        names.append(name)
    return names


def _service_names(backend: str, pools: Sequence[Pool]) -> list[str]:
    out: list[str] = []
    counts = {r: sum(1 for p in pools if p.role == r) for r in _ROLE_WORD}
    seen: dict[str, int] = {}
    for p in pools:
        seen[p.role] = seen.get(p.role, 0) + 1
        base = f"{_SERVICE_PREFIX[backend]}{_ROLE_WORD[p.role]}Worker"
        out.append(base if counts[p.role] == 1 else f"{base}{seen[p.role]}")
    return out


# ----------------------------------------------------------------------------------------------- text helpers


def _yq(text: str) -> str:
    """A YAML single-quoted scalar (always quoted: a value is never read as a number, boolean or null)."""
    if any(ord(c) < 32 for c in text):
        return json.dumps(text)
    return "'" + text.replace("'", "''") + "'"


def _mark(arg: _Arg) -> str:
    return f"[{arg.origin}] {arg.note}"


def _comment_lines(text: str, prefix: str = "# ", width: int = 110) -> list[str]:
    words, lines, cur = text.split(), [], ""
    for w in words:
        if cur and len(prefix) + len(cur) + 1 + len(w) > width:
            lines.append(prefix + cur)
            cur = w
        else:
            cur = f"{cur} {w}" if cur else w
    if cur:
        lines.append(prefix + cur)
    return lines or [prefix.rstrip()]


def _item(head: str, text: str, indent: int) -> list[str]:
    """``head`` then ``text`` wrapped, its lines indented by ``indent``."""
    wrapped = _comment_lines(text, " " * indent)
    wrapped[0] = head.ljust(indent) + wrapped[0][indent:]
    return wrapped


def _node_selector(inp: EmitInputs, p: Pool) -> str:
    where = f"your cluster's label of nodes with {_gpu_name(inp, p.gpu)}"
    return f"{_yq('<GPU_NODE_LABEL>')}: {_yq('<' + p.gpu + '>')}  # placeholder: {where}"


def _gpu_name(inp: EmitInputs, gpu: str) -> str:
    spec = inp.gpus.get(gpu)
    return spec.name if spec is not None else gpu


def _pool_line(inp: EmitInputs, p: Pool) -> str:
    layout = f", {p.layout}" if p.layout else ""
    return (
        f"{p.role}, {p.replicas} replica{'s' if p.replicas != 1 else ''} of {p.tp}x {_gpu_name(inp, p.gpu)} (TP {p.tp}{layout})"
    )


def _link_text(inp: EmitInputs, p: Pool) -> str | None:
    if p.link is None:
        return None
    spec = inp.links.get(p.link)
    ports = next((lu.ports for lu in inp.deployment.links if lu.link == p.link), None)
    kind = f" ({spec.name}, {spec.kind})" if spec is not None else ""
    return f"the KV cache leaves this pool on {p.link}{kind}" + (f", {ports} NIC ports on each side" if ports else "")


# ----------------------------------------------------------------------------------------------- files


def _launch_script(target: str, program: FlagProgram, po: _PoolOut, inp: EmitInputs, flags_line: str) -> str:
    argv = [*program.command, *(x for a in po.args for x in a.argv())]
    lines = [
        "#!/bin/sh",
        f"# planner size --emit {target}: starts ONE replica of pool {po.name}",
        f"# ({_pool_line(inp, po.pool)}): start it {po.pool.replicas} times, once per replica,",
        f"# each on {po.pool.tp} GPUs of one node (CUDA_VISIBLE_DEVICES).",
        f"# Flags checked against {flags_line}.",
        "# Settings ([plan] the plan's numbers, [profile] the engine profile's, [catalog] the model catalog's,",
        "# [emit] planner's choice for this engine; everything else is the engine's default):",
    ]
    for a in po.args:
        shown = " ".join(a.argv()) if a.flag else f"{a.value} (the model)"
        lines += _comment_lines(f"{shown}: {_mark(a)}", "#   ")
    link = _link_text(inp, po.pool)
    if link:
        lines += _comment_lines(link + ".")
    for t in po.todo:
        lines += _comment_lines(f"TODO: {t}")
    lines.append("set -eu")
    for name, what in po.env:
        lines.append(f': "${{{name}:?set {name} to {what}}}"')
        lines.append(f"export {name}")
    lines.append("exec " + " \\\n    ".join(_argv_pairs(argv, len(program.command))))
    return "\n".join(lines) + "\n"


def _argv_pairs(argv: list[str], command_len: int) -> list[str]:
    """Shell words, a flag and its value on one line."""
    out = [" ".join(shlex.quote(w) for w in argv[:command_len])]
    i = command_len
    while i < len(argv):
        w = argv[i]
        if w.startswith("-") and i + 1 < len(argv) and not argv[i + 1].startswith("--"):
            out.append(f"{shlex.quote(w)} {shlex.quote(argv[i + 1])}")
            i += 2
        else:
            out.append(shlex.quote(w))
            i += 1
    return out


def _arg_yaml(args: Sequence[_Arg], indent: str) -> list[str]:
    out = []
    for a in args:
        if a.flag:
            out.append(f"{indent}- {_yq(a.flag)}" + ("" if a.value is not None else f"  # {_mark(a)}"))
        if a.value is not None:
            out.append(f"{indent}- {_yq(a.value)}  # {_mark(a)}")
    return out


_SKELETON = (
    "SKELETON, not a tested deployment: replace every <...> placeholder (image, namespace, node selector) and add what "
    "your cluster needs (a model-cache volume, the Hugging Face token of a gated model, RDMA devices for the KV link, "
    "Services and the router in front of the pools). See README.txt."
)


def _deployment_yaml(target: str, program: FlagProgram, po: _PoolOut, inp: EmitInputs, part_of: str) -> str:
    p = po.pool
    lines = [f"# planner size --emit {target}: Kubernetes Deployment for pool {po.name}", f"# ({_pool_line(inp, p)})."]
    lines += _comment_lines(_SKELETON)
    link = _link_text(inp, p)
    if link:
        lines += _comment_lines(link + ": request your cluster's RDMA device resource for it.")
    for t in po.todo:
        lines += _comment_lines(f"TODO: {t}")
    container = "vllm" if target == "vllm" else "sglang"
    labels = [
        f"app.kubernetes.io/name: {_yq(po.name)}",
        f"app.kubernetes.io/component: {_yq(p.role)}",
        f"app.kubernetes.io/part-of: {_yq(part_of)}",
    ]
    lines += [
        "apiVersion: apps/v1",
        "kind: Deployment",
        "metadata:",
        f"  name: {_yq(po.name)}",
        f"  namespace: {_yq('<NAMESPACE>')}  # placeholder",
        "  labels:",
        *("    " + x for x in labels),
        "spec:",
        f"  replicas: {p.replicas}  # [plan] replicas of the pool",
        "  selector:",
        "    matchLabels:",
        f"      app.kubernetes.io/name: {_yq(po.name)}",
        "  template:",
        "    metadata:",
        "      labels:",
        *("        " + x for x in labels),
        "    spec:",
        "      nodeSelector:",
        f"        {_node_selector(inp, p)}",
        "      containers:",
        f"        - name: {_yq(container)}",
        f"          image: {_yq('<IMAGE>')}  # placeholder: an image with {_ENGINE_NAME[target]} {inp.engine.version}"
        + (" and the KV transfer library" if p.role != "colocated" else ""),
        f"          command: [{', '.join(_yq(c) for c in program.command)}]",
        "          args:",
        *_arg_yaml(po.args, "            "),
    ]
    if po.env:
        lines.append("          env:")
        for name, what in po.env:
            lines += [
                f"            - name: {_yq(name)}  # [emit] {what}: the pod's IP",
                "              valueFrom:",
                "                fieldRef:",
                f"                  fieldPath: {_yq('status.podIP')}",
            ]
    lines += [
        "          ports:",
        f"            - containerPort: {_PORT[target]}  # the engine's default port",
        "          resources:",
        "            limits:",
        f"              nvidia.com/gpu: {p.tp}  # [plan] GPUs per replica",
    ]
    if p.tp > 1:
        lines += [
            "          volumeMounts:",
            f"            - name: {_yq('dshm')}",
            f"              mountPath: {_yq('/dev/shm')}",
            "      volumes:",
            f"        - name: {_yq('dshm')}  # shared memory for the replica's GPU processes (a container's default is small)",
            "          emptyDir:",
            f"            medium: {_yq('Memory')}",
        ]
    return "\n".join(lines) + "\n"


def _graph_yaml(
    backend: str, program: FlagProgram, outs: Sequence[_PoolOut], inp: EmitInputs, flags: EngineFlags, name: str
) -> str:
    graph = flags.graph
    assert graph is not None, "the flag catalog's dynamo entry has its graph fields"  # checked by the loader's tests
    lines = [
        f"# planner size --emit dynamo: the {graph.kind} of the plan",
        f"# (Dynamo {flags.version}, {flags.programs[backend].command[-1]}),",
        "# one service per pool of the plan plus the frontend; Dynamo's operator creates the pods.",
    ]
    lines += _comment_lines(_SKELETON)
    lines += [
        f"apiVersion: {graph.api_version}",
        f"kind: {graph.kind}",
        "metadata:",
        f"  name: {_yq(name)}",
        f"  namespace: {_yq('<NAMESPACE>')}  # placeholder",
        "spec:",
        "  services:",
        "    Frontend:",
        f"      componentType: {_yq('frontend')}",
        "      replicas: 1  # [emit] one frontend (the plan does not size it)",
        "      extraPodSpec:",
        "        mainContainer:",
        f"          image: {_yq('<IMAGE>')}  # placeholder: Dynamo {flags.version}'s {backend} runtime image",
    ]
    for po in outs:
        p = po.pool
        lines.append(f"    {po.service}:  # pool {po.name}: {_pool_line(inp, p)}")
        link = _link_text(inp, p)
        if link:
            lines += _comment_lines(link + ".", "      # ")
        for t in po.todo:
            lines += _comment_lines(f"TODO: {t}", "      # ")
        lines.append(f"      componentType: {_yq('worker')}")
        if p.role != "colocated":
            lines.append(f"      subComponentType: {_yq(p.role)}")
        lines += [
            f"      replicas: {p.replicas}  # [plan] replicas of the pool",
            "      resources:",
            "        limits:",
            f"          gpu: {_yq(str(p.tp))}  # [plan] GPUs per replica",
            "      extraPodSpec:",
            "        nodeSelector:",
            f"          {_node_selector(inp, p)}",
            "        mainContainer:",
            f"          image: {_yq('<IMAGE>')}  # placeholder: Dynamo {flags.version}'s {backend} runtime image",
            f"          command: [{', '.join(_yq(c) for c in program.command)}]",
            "          args:",
            *_arg_yaml(po.args, "            "),
        ]
    return "\n".join(lines) + "\n"


def _summary(
    target: str,
    backend: str,
    label: str,
    outs: Sequence[_PoolOut],
    inp: EmitInputs,
    files_of: Mapping[str, Mapping[str, str]],
    todo: Sequence[str],
) -> str:
    doc = {
        "emit": target,
        "engine": {"id": backend, "version": inp.engine.version, "label": label},
        "model": {"id": inp.model.id, "hf_id": inp.model.hf_id},
        "precision": inp.precision,
        "workload": inp.workload,
        "pools": [
            {
                "name": po.name,
                "key": po.pool.key,
                "role": po.pool.role,
                "gpu": po.pool.gpu,
                "tp": po.pool.tp,
                "attention_dp": po.pool.attention_dp,
                "moe_ep": po.pool.moe_ep,
                "replicas": po.pool.replicas,
                "gpus_per_replica": po.pool.tp,
                "num_gpus": po.pool.num_gpus,
                "max_batch": po.pool.max_batch,
                "token_budget": po.pool.token_budget,
                "link": po.pool.link,
                "kv_cache_tokens_per_replica": inp.kv_tokens.get(po.pool.key),
                "files": dict(files_of[po.name]),
                "settings": [{"flag": a.flag or None, "value": a.value, "origin": a.origin, "note": a.note} for a in po.args],
            }
            for po in outs
        ],
        "links": [{"link": lu.link, "ports_per_side": lu.ports} for lu in inp.deployment.links],
        "assumptions_not_emitted": list(inp.assumptions),
        "todo": list(todo),
    }
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def _readme(
    target: str,
    backend: str,
    label: str,
    outs: Sequence[_PoolOut],
    inp: EmitInputs,
    files: Sequence[tuple[str, str]],
    todo: Sequence[str],
    flags_line: str,
) -> str:
    e = inp.engine
    lines = [
        f"planner size --emit {target}: the deployment settings of a plan for {label}",
        "",
        f"Plan: {inp.model.id} ({inp.precision}), sized under the engine profile {e.name} {e.version} ({e.label})"
        + (f"; workload {inp.workload}" if inp.workload else ""),
        "",
        f"  {'pool':<44} {'role':<9} {'GPU':<14} {'TP':>3} {'layout':<20} {'replicas':>8} {'GPUs':>5} "
        f"{'max batch':>9}  token budget",
    ]
    for po in outs:
        p = po.pool
        budget = (
            f"{p.token_budget} [plan]" if p.token_budget is not None else f"{e.limits(p.gpu).max_num_batched_tokens} [profile]"
        )
        lines.append(
            f"  {po.name:<44} {p.role:<9} {p.gpu:<14} {p.tp:>3} {p.layout or 'TP':<20} {p.replicas:>8} {p.num_gpus:>5} "
            f"{p.max_batch:>9}  {budget}"
        )
    for lu in inp.deployment.links:
        spec = inp.links.get(lu.link)
        lines.append(f"  KV link: {lu.link}" + (f" ({spec.name})" if spec else "") + f", {lu.ports} NIC ports on each side")
    lines += ["", "Files"]
    width = max(len(n) for n, _ in files) + 4
    for n, what in files:
        lines += _item(f"  {n}", what, width)
    lines += [
        "",
        "Where each setting comes from (marked in every file)",
        "  [plan]     a number of the plan: tensor/expert/data-parallel layout, replicas, max batch, a co-located pool's",
        "             chunked-prefill token budget, precision",
        f"  [profile]  the engine profile the plan was sized with (catalogs/engines.yaml, {e.name} {e.version}): the GPU",
        "             memory fraction, the GPU's default token budget",
        "  [catalog]  the model catalog (catalogs/models.yaml): the Hugging Face checkpoint (hf_id)",
        "  [emit]     planner's choice for this engine where the plan has no number: the KV connector, the listen address",
        "  Every other setting is the engine's default at that release.",
        "",
    ]
    lines += _comment_lines(
        f"Flags: every flag in these files is one that {flags_line} defines (catalogs/engine_flags.yaml).", ""
    )
    lines += ["", "The Kubernetes manifests are SKELETONS: replace every <...> placeholder (image, namespace, node selector)."]
    if inp.assumptions:
        lines += ["", "What the plan assumes that no emitted flag sets"]
        for s in inp.assumptions:
            lines += _item("  -", s, 4)
    lines += ["", "TODO (not emitted: fill in before deploying)"]
    for t in todo:
        lines += _item("  -", t, 4)
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------------------------- the door


def render(inp: EmitInputs, target: str, flags: Mapping[str, EngineFlags]) -> Rendered:
    """The files of ``planner size --emit target`` for a plan (see the module's docstring), or one
    :class:`InputError` when the engine cannot run the plan's layout or the model has no checkpoint id."""
    backend = emit_backend(target, inp.engine, flags)
    if not inp.model.hf_id:
        raise InputError(
            f"--emit {target}: model {inp.model.id} has no hf_id in the catalog: the launch commands need its checkpoint",
            hint="add hf_id to the model entry (planner catalog import-model --hf-id ORG/NAME)",
        )
    if target == "dynamo":
        dyn = flags["dynamo"]
        program = dyn.programs[backend]
        label = f"Dynamo {dyn.version} ({flags[backend].name} {dyn.backends[backend]})"
        flags_line = f"Dynamo {dyn.version} ({dyn.source_line()})"
    else:
        known = flags[target]
        program = known.programs["serve" if target == "vllm" else "launch_server"]
        label = f"{known.name} {known.version}"
        flags_line = f"{known.name} {known.version} ({known.source_line()})"
    pools = list(inp.deployment.pools)
    names = _pool_names(pools)
    services = _service_names(backend, pools)
    outs: list[_PoolOut] = []
    todo: list[str] = []
    for p, name, service in zip(pools, names, services, strict=True):
        args, p_todo, env = _pool_args(backend, target, p, name, inp)
        outs.append(_PoolOut(pool=p, name=name, service=service, args=tuple(args), todo=tuple(p_todo), env=tuple(env)))
        todo += [t for t in p_todo if t not in todo]
    _check_documented(program, outs, flags, target)
    todo += _general_todo(target, backend, outs, inp)
    part_of = _k8s_name(f"planner-{inp.model.id}")
    files: dict[str, str] = {}
    listing: list[tuple[str, str]] = [
        ("README.txt", "this file"),
        ("plan-summary.json", "the same as data: every pool's settings (flag, value, where it comes from) and the TODOs"),
    ]
    files_of: dict[str, dict[str, str]] = {}
    executable: set[str] = set()
    if target == "dynamo":
        front = flags["dynamo"].programs["frontend"]
        path = "launch/frontend.sh"
        files[path] = (
            "\n".join(
                [
                    "#!/bin/sh",
                    f"# planner size --emit dynamo: Dynamo {flags['dynamo'].version}'s OpenAI-compatible frontend",
                    "# (HTTP on its default port), which routes each request to a prefill and a decode worker.",
                    "# Needs Dynamo's discovery store (etcd by default) reachable, as every worker does.",
                    "set -eu",
                    "exec " + " ".join(shlex.quote(c) for c in front.command),
                ]
            )
            + "\n"
        )
        executable.add(path)
        listing.append((path, "starts the Dynamo frontend (not sized by the plan: one is enough to start with)"))
    for po in outs:
        launch = f"launch/{po.name}.sh"
        files[launch] = _launch_script(target, program, po, inp, flags_line)
        executable.add(launch)
        listing.append((launch, f"starts one replica of pool {po.name} ({_pool_line(inp, po.pool)})"))
        files_of[po.name] = {"launch": launch}
        if target != "dynamo":
            manifest = f"k8s/{po.name}.yaml"
            files[manifest] = _deployment_yaml(target, program, po, inp, part_of)
            listing.append(
                (
                    manifest,
                    f"Kubernetes Deployment SKELETON of pool {po.name}: {po.pool.replicas} replicas, {po.pool.tp} GPUs each",
                )
            )
            files_of[po.name]["manifest"] = manifest
    if target == "dynamo":
        graph = "k8s/dynamo-graph.yaml"
        files[graph] = _graph_yaml(backend, program, outs, inp, flags["dynamo"], part_of)
        listing.append((graph, "the DynamoGraphDeployment SKELETON of the whole plan: the frontend and one service per pool"))
        for po in outs:
            files_of[po.name]["manifest"] = graph
    files["plan-summary.json"] = _summary(target, backend, label, outs, inp, files_of, todo)
    files["README.txt"] = _readme(target, backend, label, outs, inp, listing, todo, flags_line)
    return Rendered(
        target=target,
        backend=backend,
        label=label,
        files=dict(sorted(files.items())),
        executable=frozenset(executable),
        todo=tuple(todo),
    )


def _check_documented(program: FlagProgram, outs: Sequence[_PoolOut], flags: Mapping[str, EngineFlags], target: str) -> None:
    """Every emitted flag is one the program defines, with a value it accepts (a failure is a bug of this module)."""
    for po in outs:
        argv = [x for a in po.args for x in a.argv()]
        bad = program.undocumented(argv)
        if bad:
            raise AssertionError(f"--emit {target}: undocumented flags {bad} for {program.name}")
        for name, _ in po.env:
            if name not in flags["vllm"].env:
                raise AssertionError(f"--emit {target}: undocumented environment variable {name}")


def _general_todo(target: str, backend: str, outs: Sequence[_PoolOut], inp: EmitInputs) -> list[str]:
    disagg = any(po.pool.role != "colocated" for po in outs)
    out: list[str] = []
    if target == "vllm" and disagg:
        out.append(
            "a router in front of the pools: a vLLM prefill/decode deployment needs a proxy that sends each request to a "
            "prefill instance (max_tokens 1), then to a decode instance with the kv_transfer_params the prefill returned; "
            "vLLM 0.12.0 ships only example proxies, so none is emitted"
        )
        out.append(
            "NIXL (pip install nixl) in the image, and UCX's network devices for the KV link (UCX_NET_DEVICES; the NCCL_* "
            "variables do not apply to NixlConnector)"
        )
    if target == "sglang" and disagg:
        out.append(
            "a router in front of the pools: SGLang's prefill/decode mode needs its PD router (the sglang-router package, "
            "given the prefill and decode URLs); its flags were not read at a version, so it is not emitted"
        )
        out.append(
            "the Mooncake transfer engine (pip install mooncake-transfer-engine) in the image, and, where the KV link is "
            "InfiniBand or RoCE, --disaggregation-ib-device naming its RDMA NICs (default: detected by Mooncake)"
        )
    if target == "dynamo":
        out.append(
            "Dynamo's operator and CRDs installed at the release of the images (0.8.0); run locally, the launch scripts also "
            "need Dynamo's discovery store (etcd by default, --store-kv)"
        )
    by_role: dict[str, int] = {}
    for po in outs:
        by_role[po.pool.role] = by_role.get(po.pool.role, 0) + 1
    if any(n > 1 for n in by_role.values()):
        where = (
            "Dynamo's frontend spreads requests over every worker of a role"
            if target == "dynamo"
            else "route them in your router"
        )
        out.append(
            "the plan splits the classes over several pools of one role (data.routing of planner size -f json); the emitted "
            f"files start each pool but do not reproduce that split ({where})"
        )
    return out
