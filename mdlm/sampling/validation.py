"""The checks of :class:`~mdlm.sampling.config.MDLMGenerationConfig`: one ``ValueError`` naming the field for a
value out of range, and one for each combination of settings that has no meaning. Names are case-insensitive."""

from __future__ import annotations

import math
from typing import Any

from mdlm.schedules import SCHEDULE_NAMES, get_schedule

EVEN = "even"


def _choice(name: str, value: Any, valid: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value.lower() not in valid:
        raise ValueError(f"unknown {name} {value!r}; valid: {', '.join(valid)}")
    return value.lower()


def _int(name: str, value: Any, lowest: int, optional: bool = False) -> None:
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < lowest:
        raise ValueError(f"{name} must be {'None or ' if optional else ''}an integer ≥ {lowest}, got {value!r}")


def _number(name: str, value: Any, lo: float, hi: float = math.inf, hi_open: bool = False) -> None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not (math.isfinite(v) and lo <= v and (v < hi if hi_open else v <= hi)):
        upper = "" if hi == math.inf else f" and {'<' if hi_open else '≤'} {hi}"
        raise ValueError(f"{name} must be a finite number ≥ {lo}{upper}, got {value!r}")


def _interval(name: str, value: Any) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a pair (lo, hi), got {value!r}") from None
    if not (0.0 <= lo < hi <= 1.0):
        raise ValueError(f"{name} must satisfy 0 ≤ lo < hi ≤ 1, got {value!r}")
    return (lo, hi)


def _bool(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, got {value!r}")


def _schedule(name: Any) -> str:
    valid = ", ".join((EVEN,) + tuple(SCHEDULE_NAMES))
    if not isinstance(name, str):
        raise ValueError(f"schedule must be a name; valid: {valid}")
    if name.lower() == EVEN:
        return EVEN
    try:
        get_schedule(name)
    except ValueError:
        raise ValueError(f"unknown schedule {name!r}; valid: {valid} (e.g. poly2)") from None
    return name


def validate(c: Any) -> None:
    """Normalise names and check every field of ``c`` (an ``MDLMGenerationConfig``) in place."""
    from .config import CACHE_IMPLEMENTATIONS, CONFIDENCES, GUIDANCE_TIMES, REMDM_STRATEGIES, UNMASKING

    _int("max_new_tokens", c.max_new_tokens, 1)
    _int("steps", c.steps, 1)
    _int("block_length", c.block_length, 1, optional=True)
    _int("top_k", c.top_k, 1, optional=True)
    _int("moment_substeps", c.moment_substeps, 1)
    _int("verify_draft", c.verify_draft, 1)
    for name in ("mask_token_id", "eos_token_id", "pad_token_id"):
        _int(name, getattr(c, name), 0, optional=True)
    c.schedule = _schedule(c.schedule)
    c.unmasking = _choice("unmasking", c.unmasking, UNMASKING)
    c.confidence = _choice("confidence", c.confidence, CONFIDENCES)
    c.remdm_strategy = _choice("remdm_strategy", c.remdm_strategy, REMDM_STRATEGIES)
    c.guidance_time = _choice("guidance_time", c.guidance_time, GUIDANCE_TIMES)
    c.cache_implementation = _choice("cache_implementation", c.cache_implementation, CACHE_IMPLEMENTATIONS)
    c.guidance_interval = _interval("guidance_interval", c.guidance_interval)
    c.remdm_interval = _interval("remdm_interval", c.remdm_interval)
    for name in ("temperature", "choice_noise", "moment_alpha", "guidance_scale"):
        _number(name, getattr(c, name), 0.0)
    _number("moment_hybrid", c.moment_hybrid, 0.0, 1.0)
    _number("remdm_eta", c.remdm_eta, 0.0, 1.0, hi_open=True)
    if c.top_p is not None and not (0.0 < float(c.top_p) <= 1.0):
        raise ValueError(f"top_p must be None or in (0, 1], got {c.top_p!r}")
    for name in ("choice_noise_anneal", "guidance_batch", "stop_at_eos", "suppress_pad", "chat", "cuda_graphs",
                 "reuse_logits", "return_history", "partial_cache", "eos_early_stop", "verify", "step_graph",
                 "launch_ahead", "cuda_graph_reuse", "torch_compile"):
        _bool(name, getattr(c, name))
    _check_threshold(c)
    _check_adaptive(c)
    _check_combinations(c)


def _check_threshold(c: Any) -> None:
    if c.threshold is None:
        if c.unmasking == "fast_dllm" and c.factor is None:
            raise ValueError("unmasking='fast_dllm' needs a threshold (e.g. 0.9) or a factor (e.g. 1.0)")
        return
    thr = float(c.threshold)
    if not math.isfinite(thr):
        raise ValueError(f"threshold must be finite, got {c.threshold!r}")
    if c.confidence == "entropy":
        if thr > 0.0:
            raise ValueError(f"threshold must be ≤ 0 for confidence='entropy' (negative entropy), got {thr}")
    elif not (0.0 <= thr <= 1.0):
        raise ValueError(f"threshold must be in [0, 1] for confidence={c.confidence!r}, got {thr}")
    if c.unmasking in ("moment", "ancestral", "eb"):
        raise ValueError(f"threshold decoding is for unmasking='confidence' or 'fast_dllm', not {c.unmasking!r}")


def _check_adaptive(c: Any) -> None:
    """The adaptive-commit and verification fields (issue #17)."""
    if c.factor is not None:
        _number("factor", c.factor, 0.0)
        if c.unmasking != "fast_dllm":
            raise ValueError(f"factor is Fast-dLLM's rule: it needs unmasking='fast_dllm', not {c.unmasking!r}")
        if c.threshold is not None:
            raise ValueError("fast_dllm takes a threshold or a factor, not both")
        if float(c.factor) <= 0:
            raise ValueError(f"factor must be > 0 (no count n ≥ 1 satisfies (n+1)·(1 − c) < 0), got {c.factor!r}")
    _number("eb_gamma", c.eb_gamma, 0.0)
    if c.verify:
        off = {"temperature": c.temperature != 0, "choice_noise": c.choice_noise != 0, "remdm_eta": c.remdm_eta != 0,
               "guidance_scale": c.guidance_scale != 0, "unmasking": c.unmasking not in ("confidence", "fast_dllm", "eb"),
               "confidence": c.unmasking == "confidence" and c.confidence != "prob"}
        bad = [f"{k}={getattr(c, k)!r}" for k, v in off.items() if v]
        if bad:
            raise ValueError("verify reproduces greedy one-token-per-step decoding: it needs temperature=0, "
                             "unmasking confidence (with confidence='prob'), fast_dllm or eb, no choice noise, "
                             f"re-masking or guidance; got {', '.join(bad)}")
        if c.cache_implementation != "none":
            raise ValueError("verify runs full forwards of several canvases per row: use cache_implementation='none' "
                             "(a block-diffusion model always decodes with its block_exact cache: verify is not for it)")
        if c.eos_early_stop:
            raise ValueError("verify is exact (the greedy output); eos_early_stop would change it: use one of them")


def _check_combinations(c: Any) -> None:
    if c.cache_implementation not in ("none", "block_exact") and c.block_length is None:
        raise ValueError(f"cache_implementation={c.cache_implementation!r} caches the K/V outside the current block, "
                         "so it needs semi-autoregressive blocks: set block_length (smaller than the generated length)")
    if c.torch_compile and (c.cache_implementation == "prefix" or c.partial_cache):
        what = "the prefix cache" if c.cache_implementation == "prefix" else "partial caching"
        fix = ("use cache_implementation none, dual or block_exact" if c.cache_implementation == "prefix"
               else "turn partial_cache off")
        raise ValueError(f"torch_compile with {what} would recompile the forward at every block (its window is a "
                         f"Python slice); {fix}, or torch_compile=False")
    if c.cuda_graphs and not (c.uses_greedy_step or c.verify):
        raise ValueError("cuda_graphs replays the greedy step: it needs temperature=0, unmasking confidence, fast_dllm or eb, "
                         "confidence='prob', choice_noise=0, no re-masking and no guidance (guidance_scale=0)")
    moment_only = {"moment_alpha": c.moment_alpha > 0, "moment_hybrid": c.moment_hybrid > 0,
                   "moment_substeps": c.moment_substeps > 1}
    for name, used in moment_only.items():
        if used and c.unmasking != "moment":
            raise ValueError(f"{name} applies to unmasking='moment' only")
    if c.choice_noise > 0 and c.unmasking not in ("confidence", "fast_dllm"):
        raise ValueError(f"choice_noise applies to unmasking='confidence' only, not {c.unmasking!r}")
    if c.partial_cache:
        if c.moment_substeps < 2:
            raise ValueError("partial_cache needs moment_substeps ≥ 2 (it speeds up the groups after the first)")
        if c.cache_implementation != "none":
            raise ValueError(f"partial_cache cannot be combined with cache_implementation={c.cache_implementation!r}")
        if c.guidance_scale > 0 and not c.guidance_batch:
            raise ValueError("partial_cache with classifier-free guidance needs guidance_batch=True")
