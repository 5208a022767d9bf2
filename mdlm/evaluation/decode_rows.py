"""The rows of the decoding benchmark (eval/decode_bench.py): name → sampler settings over one greedy base.

Every row decodes the same canvases greedily (temperature 0, confidence = p(argmax)) in blocks of
``block_length`` with at most one step per generated token (``steps = gen_length``): the rows differ only in
how the network is called and how many tokens a step commits. ``llada`` is not a sampler setting: it is
:func:`mdlm.evaluation.llada_loop.llada_generate`, the reference every row is compared with.

  uncached            one token per step, no cache, LM head on the block window (``generate`` on the model)
  graphs              + each step replayed as one CUDA graph
  dual                Fast-dLLM dual K/V cache (approximate after each block's first step), with graphs
  threshold           Fast-dLLM parallel decoding: top-1 + every position with p >= threshold (Wu et al. 2025)
  factor              Fast-dLLM's factor rule instead of a fixed threshold
  eb                  entropy-bounded unmasking (EB-sampler, Ben-Hamu et al. 2025): an entropy budget per step
  verify              exact self-speculative decoding: a threshold draft, kept only where one more forward agrees
  block_exact         block-diffusion models (BD3-LM): finished blocks' K/V cached exactly
  ...+eos             EOS-aware early block termination
  ...+compile         the network's forward through torch.compile (TorchInductor's fused kernels, then the graphs)
  ...+sync            a threshold / factor / EB row that reads the block's state back after every step (the loop
                      before launch-ahead, session 20) instead of launching ahead (``launch_ahead``, sampling/ahead.py)
  ...+per_block       CUDA graphs captured once per block (before 2026-11-30: the window baked into each graph)
                      instead of once per generation (``cuda_graph_reuse``), for a before/after in one run
Every row but ``uncached`` asks for CUDA graphs. Combinations are named by joining with ``+``; ``ROW@T`` runs a
threshold row at threshold T (with compilation ``threshold+compile@0.8``, or ``threshold@0.8+compile``). A row
whose option the installed sampler or the model lacks is skipped by the benchmark with the reason (the config's or
``generate``'s error).
"""

from __future__ import annotations

from typing import Any

from ..sampling import MDLMGenerationConfig

# Rows that must give the tokens of ``uncached`` (one token per step) exactly: the benchmark flags them otherwise.
EXACT_ROWS = ("graphs", "verify", "graphs+per_block")
# Rows equal to one-token-per-step greedy decoding by construction (tested): the exact rows, ``uncached`` itself
# and a block-diffusion model's ``block_exact``.
EXACT_BY_CONSTRUCTION = ("uncached", "block_exact", *EXACT_ROWS)


def row_overrides(threshold: float, factor: float, eb_gamma: float) -> dict[str, dict[str, Any]]:
    """Row name → MDLMGenerationConfig fields over :func:`base_settings`, in the default order the rows run (the
    most telling first, so that a run cut by its time limit loses the least). Every row but ``uncached`` asks for
    CUDA graphs; :func:`row_config` drops them, with a note, where the sampler refuses them for the row."""
    thr = {"unmasking": "fast_dllm", "threshold": threshold}
    eb = {"unmasking": "eb", "eb_gamma": eb_gamma}
    fac = {"unmasking": "fast_dllm", "threshold": None, "factor": factor}
    g, dual, bx = {"cuda_graphs": True}, {"cache_implementation": "dual"}, {"cache_implementation": "block_exact"}
    sync = {"launch_ahead": False}
    return {
        "uncached": {},
        "graphs": g,
        "block_exact": bx | g,
        "block_exact+threshold": bx | thr | g,
        "block_exact+eb": bx | eb | g,
        "block_exact+factor": bx | fac | g,
        "threshold": thr | g,
        "eb": eb | g,
        "dual": dual | g,
        "dual+threshold": dual | thr | g,
        "dual+eb": dual | eb | g,
        "factor": fac | g,
        "dual+factor": dual | fac | g,
        "verify": thr | {"verify": True} | g,
        "dual+threshold+eos": dual | thr | g | {"eos_early_stop": True},
        "threshold+eos": thr | g | {"eos_early_stop": True},
        "eb+eos": eb | g | {"eos_early_stop": True},
        "threshold+sync": thr | g | sync,
        "eb+sync": eb | g | sync,
        "factor+sync": fac | g | sync,
        "graphs+per_block": g | {"cuda_graph_reuse": False},
        "dual+per_block": dual | g | {"cuda_graph_reuse": False},
    }


COMPILE_SUFFIX = "+compile"  # any row name + this: the same row with torch_compile=True


def select_rows(plan: dict[str, dict[str, Any]], names: list[str]) -> dict[str, dict[str, Any]]:
    """The rows ``names`` of ``plan``, in the order given. ``ROW@T`` (e.g. ``dual+threshold@0.7``) is a threshold
    row of ``plan`` run with the Fast-dLLM threshold T instead; ``ROW+compile`` (e.g. ``threshold+compile@0.8``) the
    row with ``torch_compile``. Raises ``ValueError`` naming unknown rows."""
    out, unknown = {}, []
    for name in names:
        base, _, t = name.partition("@")
        if t.endswith(COMPILE_SUFFIX):  # ROW@T+compile, the same row as ROW+compile@T
            t, base = t[: -len(COMPILE_SUFFIX)], base + COMPILE_SUFFIX
        compiled = base.endswith(COMPILE_SUFFIX) and base != COMPILE_SUFFIX
        base = base[: -len(COMPILE_SUFFIX)] if compiled else base
        kw = plan.get(base)
        if kw is None or (t and kw.get("threshold") is None):  # a factor row has threshold None
            unknown.append(name)
            continue
        if t:
            try:
                thr = float(t)
            except ValueError:
                thr = -1.0
            if not 0.0 < thr < 1.0:
                raise ValueError(f"row {name!r}: the threshold after '@' must be a number in (0, 1)")
            kw = kw | {"threshold": thr}
        out[name] = kw | {"torch_compile": True} if compiled else kw
    if unknown:
        raise ValueError(f"unknown row(s) {unknown}; valid: llada, {', '.join(plan)} (any row also as ROW+compile, "
                         "threshold rows also as ROW@T)")
    return out


def sample_stem(row: str) -> str:
    """The row's part of its sample file name (``G{G}_B{B}_{stem}.jsonl``): ``dual+threshold@0.7`` →
    ``dual_threshold_t0.7``."""
    return row.replace("+", "_").replace("@", "_t")


def base_settings(gen_length: int, block_length: int) -> dict[str, Any]:
    """LLaDA's greedy setting (docs/sampling.md, "LLaDA's generate() exactly"), one step per generated token."""
    return {"max_new_tokens": gen_length, "steps": gen_length, "block_length": block_length, "schedule": "even",
            "temperature": 0.0, "unmasking": "confidence", "confidence": "prob", "choice_noise": 0.0,
            "stop_at_eos": False, "suppress_pad": False, "cache_implementation": "none"}


def _make(kw: dict[str, Any]) -> tuple[MDLMGenerationConfig | None, str]:
    try:
        return MDLMGenerationConfig(**kw), ""
    except (TypeError, ValueError) as e:
        return None, f"{type(e).__name__}: {str(e).splitlines()[0]}"


def row_config(gen_length: int, block_length: int, overrides: dict[str, Any],
               graphs: bool = True) -> tuple[MDLMGenerationConfig | None, str]:
    """(config, note) for a row; (None, the reason) when this sampler cannot run it (an unknown field or a refused
    value). ``graphs=False`` (no GPU), or a refusal of ``cuda_graphs`` for this row, runs it without CUDA graphs
    and says so in the note."""
    kw = base_settings(gen_length, block_length) | overrides
    if not kw.get("cuda_graphs"):
        return _make(kw)
    if not graphs:
        cfg, why = _make(kw | {"cuda_graphs": False})
        return cfg, why or "no CUDA graphs (not a CUDA device)"
    cfg, why = _make(kw)
    if cfg is not None:
        return cfg, ""
    plain, why_plain = _make(kw | {"cuda_graphs": False})
    return (plain, f"no CUDA graphs ({why})") if plain is not None else (None, why_plain)
