"""The commands whose JSON output the refactors must keep byte-identical (tests/test_golden.py).

Regenerate the stored outputs after an intended change of the numbers with
``python tests/golden_cases.py --update`` and say in the commit what changed and why.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "data" / "golden"

WORKLOADS = sorted(p.name for p in (ROOT / "examples" / "workloads").glob("*.yaml"))
PROPOSALS = sorted(p.name for p in (ROOT / "examples" / "proposals").glob("*.yaml"))
TRACES = ["azure_code_2023.csv", "burstgpt.csv", "generic.jsonl.gz", "mooncake.jsonl", "vidur.csv"]

# name -> argv (paths relative to the repository root; every case writes JSON to stdout)
CASES: dict[str, list[str]] = {}
for _w in WORKLOADS:
    CASES[f"size_{_w[:-5]}"] = ["size", f"examples/workloads/{_w}", "-f", "json"]
for _p in PROPOSALS:
    CASES[f"check_{_p[:-5]}"] = ["check", f"examples/proposals/{_p}", "-f", "json"]
for _t in TRACES:
    CASES[f"profile_{_t.split('.')[0]}"] = ["profile", f"examples/traces/{_t}", "-f", "json"]
CASES.update(
    {
        "profile_mooncake_model": ["profile", "examples/traces/mooncake.jsonl", "--model", "llama-3.1-8b", "-f", "json"],
        "estimate_prefill": [
            "estimate",
            "prefill",
            "-m",
            "llama-3.1-70b",
            "-g",
            "h100-sxm",
            "--tp",
            "4",
            "--tokens",
            "2048",
            "-f",
            "json",
        ],
        "estimate_decode": [
            "estimate",
            "decode",
            "-m",
            "llama-3.1-8b",
            "-g",
            "a100-sxm-80gb",
            "--tp",
            "1",
            "--batch",
            "32",
            "--context",
            "3000",
            "-f",
            "json",
        ],
        "estimate_serve": [
            "estimate",
            "serve",
            "-m",
            "llama-3.1-8b",
            "-g",
            "h200-sxm",
            "--isl",
            "4000",
            "--osl",
            "500",
            "--concurrency",
            "16",
            "-f",
            "json",
        ],
        "estimate_serve_disagg": [
            "estimate",
            "serve",
            "-m",
            "qwen3-32b",
            "--isl",
            "8000",
            "--osl",
            "1000",
            "--concurrency",
            "32",
            "--mode",
            "disaggregated",
            "--prefill-gpu",
            "h200-sxm",
            "--prefill-tp",
            "2",
            "--prefill-workers",
            "1",
            "--decode-gpu",
            "h200-sxm",
            "--decode-tp",
            "2",
            "--decode-workers",
            "1",
            "--engine",
            "sglang",
            "-f",
            "json",
        ],
        "simulate_chatbot_plan": ["simulate", "examples/proposals/chatbot_plan.yaml", "-n", "2000", "-f", "json"],
        "sweep_chatbot_rate": ["sweep", "examples/workloads/chatbot.yaml", "--vary", "rate_rps=2,8", "-f", "json"],
        "catalog_list_gpus": ["catalog", "list", "gpus", "-f", "json"],
        "catalog_show_h200": ["catalog", "show", "h200-sxm", "-f", "json"],
        "schema_workload": ["schema", "workload"],
        "size_engine_auto": ["size", "examples/workloads/code_completion.yaml", "--engine", "auto", "-f", "json"],
        "size_schedule_chat_day": ["size", "examples/workloads/chat_day.yaml", "--schedule", "-f", "json"],
    }
)


def run(argv: list[str]) -> tuple[int, str]:
    import contextlib
    import io
    import os

    from planner.cli import main

    out = io.StringIO()
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
            code = main(argv)
    finally:
        os.chdir(cwd)
    return code, out.getvalue()


def update() -> None:
    GOLDEN.mkdir(parents=True, exist_ok=True)
    for name, argv in CASES.items():
        code, text = run(argv)
        if code not in (0, 1):
            raise SystemExit(f"{name}: exit {code}")
        (GOLDEN / f"{name}.json").write_text(text, encoding="utf-8")
        print(f"{name}: exit {code}, {len(text):,} bytes")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    if sys.argv[1:] != ["--update"]:
        raise SystemExit("usage: python tests/golden_cases.py --update")
    update()
