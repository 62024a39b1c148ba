"""Unit constants and conversions: the only place human units meet SI.

Suffix glossary (names carry their unit): ``_s``/``_ms``/``_us`` time; ``_bytes``, ``_gib``
(2**30 bytes), ``_gb`` (1e9 bytes); ``_bytes_per_s``, ``_gbyte_per_s`` (1e9 bytes/s),
``_gbit_per_s`` (1e9 bits/s, link rates as quoted); ``_flop_per_s``, ``_tflop_per_s``;
``_w``, ``_kw``, ``_j``; ``_usd``, ``_usd_per_hour``, ``_usd_per_mtok``; ``_frac`` in [0, 1];
``_rps`` requests per second; ``_tokens``. Inside the core every quantity is SI.
"""

from __future__ import annotations

GIB = 2**30
GB = 1e9
TERA = 1e12
BITS_PER_BYTE = 8
MS_PER_S = 1e3
US_PER_S = 1e6
SECONDS_PER_HOUR = 3600.0
HOURS_PER_MONTH = 730.0  # 8,760 h / 12 months: the convention cloud price lists use
W_PER_KW = 1e3
TOKENS_PER_MTOK = 1e6

PRECISION_BYTES: dict[str, float] = {"bf16": 2.0, "fp16": 2.0, "fp8": 1.0, "fp4": 0.5625}
"""Bytes per weight. fp4 is NVFP4: a 4-bit value per weight plus one FP8 (E4M3) scale per block of 16,
4.5 bits (NVIDIA, "Introducing NVFP4 for efficient and accurate low-precision inference", 2025)."""
KV_BYTES: dict[str, float] = {"bf16": 2.0, "fp16": 2.0, "fp8": 1.0, "fp4": 1.0}
"""Bytes per KV-cache element. FP4 deployments keep an FP8 KV cache (the NVFP4 serving points of
aiconfigurator-core 0.12.0 and its op tables: kv_cache_dtype fp8)."""


def gib_to_bytes(gib: float) -> float:
    return gib * GIB


def gbyte_per_s_to_bytes_per_s(gbyte_per_s: float) -> float:
    return gbyte_per_s * GB


def gbit_per_s_to_bytes_per_s(gbit_per_s: float) -> float:
    return gbit_per_s * GB / BITS_PER_BYTE


def bytes_per_s_to_gbit_per_s(bytes_per_s: float) -> float:
    return bytes_per_s * BITS_PER_BYTE / GB


def tflop_per_s_to_flop_per_s(tflop_per_s: float) -> float:
    return tflop_per_s * TERA


def ms_to_s(ms: float) -> float:
    return ms / MS_PER_S


def s_to_ms(s: float) -> float:
    return s * MS_PER_S


def us_to_s(us: float) -> float:
    return us / US_PER_S
