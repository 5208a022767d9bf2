"""The greedy confidence step (LLaDA's default decoding) as one pure, fixed-shape function.

The general step of :func:`mdlm.sampling.generate` gathers the M masked positions of the block
(one host synchronisation for their indices) and runs ~50 small tensor operations on them. The most
used setting — MaskGIT / LLaDA "low_confidence" remasking with confidence p(x̂), greedy tokens
(temperature 0), no choice noise, threshold, re-masking or guidance — needs none of that generality.
This module computes that step on the whole block window (B, W, V) with a fixed shape and no host
synchronisation:

  x̂_i   = argmax_v ℓ_i(v)                    (suppressed ids at −inf)
  s_i   = log p_i(x̂_i)                        (float32; with 1 − p_i(x̂_i) and, for the EB rule, H(p_i))
  n_b   = #masked_b − counts_b[i+1]           (the exact schedule count of the step)
          threshold (Fast-dLLM): n_b = max(n_b, #{masked i: p_i(x̂_i) ≥ τ}, 1 if any masked)
  commit the n_b masked positions of row b with the largest s_i (ties → lower index)

which is what the general path computes for this setting (its confidence uses a float64
log-sum-exp; here the sum is accumulated in float32, so positions whose confidences agree to ~1e-6
may be ordered differently, and a confidence within ~1e-7 of the threshold may fall on the other side).
Because it has fixed shapes and no synchronisation, the step can be captured with the forward in a CUDA
graph (``SamplerConfig.cuda_graphs``, :mod:`.graphs`).

The per-position statistics come from :func:`.row_stats.greedy_row_stats`: on a GPU one Triton kernel that reads
the (B, W, V) logits once. Measured on one H200 (``eval/bench_greedy_step.py``, block 32, GPT-2's padded vocabulary,
docs/benchmarks/h200_decode_kernel/step.json), GPU time of the step as a CUDA graph, batch 8, Fast-dLLM rule:
276 µs with PyTorch statistics → 104 µs with the kernel; the schedule rule through ``torch.compile`` (the rest of
the step fused) 97 → 41 µs. In the sampler (``eval/bench_sampler.py``, random 125M weights, batch 8 × 256 tokens)
the compiled graphed greedy row's overhead per step fell from 10.2% to 2.6% of a compiled forward's time.
"""

from __future__ import annotations

import torch

from .adaptive import entropy_bounded_count, eos_early_fill, factor_count
from .confidence import select_top
from .row_stats import greedy_row_stats
from .eos import eos_fill

Tensor = torch.Tensor

def greedy_confidence_step(logits: Tensor, x: Tensor, window: Tensor, block: Tensor, n_after: Tensor,
                           suppress: Tensor, gen: Tensor, mask_id: int, eos_id: int | None,
                           threshold: float | None = None, rule: str = "schedule", factor: float | None = None,
                           eb_gamma: float | None = None, stop_ids: Tensor | None = None,
                           early_eos_id: int | None = None, row_stats: str | None = None
                           ) -> tuple[Tensor, Tensor, Tensor]:
    """One greedy step on a block window (confidence, Fast-dLLM or EB rule), then the EOS policies (:mod:`.eos`).

    Args:
        logits: (B, W, V) logits of the window's columns (any float dtype).
        x: (B, L) long, the canvas (not modified).
        window: (W,) long, the canvas columns of the window.
        block: (B, W) bool, the window positions that belong to the current block.
        n_after: (B,) long, masked positions the schedule leaves in the block after this step (0: the row's last
            step, which commits everything left).
        suppress: (K,) long ids never chosen (the mask id included).
        gen: (B, L) bool, the generated positions (for the EOS policy).
        mask_id: id of [MASK]; eos_id: the EOS id, or None for no EOS policy.
        threshold: with rule "schedule": also commit every masked position with p(x̂) ≥ threshold (at least one
            per row); with rule "fast_dllm": the threshold rule itself.
        rule: "schedule" (the schedule's count), "fast_dllm" (threshold or ``factor``, :mod:`.adaptive`) or "eb"
            (entropy-bounded with budget ``eb_gamma``, positions ranked by entropy).
        stop_ids, early_eos_id: EOS-aware early termination (:func:`.adaptive.eos_early_fill`): positions predicted
            as one of ``stop_ids`` (EOS, pad) are filled with ``early_eos_id``; None: off.
        row_stats: the per-position statistics' implementation, "auto", "torch" or "triton" (:mod:`.row_stats`);
            None: the choice in force.
    Returns:
        (new canvas (B, L) long, committed (B, L) bool — window commits and EOS fills —,
        flags (3,) long: [the canvas changed, masked positions are left in the block, positions filled by the
        early EOS termination]).
    """
    x_w = x.index_select(1, window)  # (B, W)
    masked = block & (x_w == mask_id)  # (B, W)
    # one pass over the vocabulary (a Triton kernel on a GPU, :mod:`.row_stats`): x̂, log p(x̂), 1 − p(x̂), H
    want_err = threshold is not None or rule == "fast_dllm"  # 1 − p(x̂): the threshold and factor rules
    tok, log_conf, err, ent = greedy_row_stats(logits, suppress, want_err, rule == "eb", row_stats)  # (B, W) each
    n_masked = masked.sum(dim=-1)  # (B,)
    score = torch.where(masked, log_conf, float("-inf"))  # (B, W) ranking score
    if rule == "schedule":
        n = (n_masked - n_after).clamp_min(0)  # (B,)
        if threshold is not None:
            n_thr = (masked & (err <= 1.0 - threshold)).sum(dim=-1)  # (B,)
            n = torch.maximum(torch.maximum(n, n_thr), masked.any(dim=-1).long())
    else:
        if rule == "eb":
            n = entropy_bounded_count(ent, masked, float(eb_gamma))
            score = torch.where(masked, -ent, float("-inf"))
        elif factor is not None:
            n = factor_count(err, masked, float(factor))
        else:
            n = torch.maximum((masked & (err <= 1.0 - threshold)).sum(dim=-1), masked.any(dim=-1).long())
        n = torch.where(n_after == 0, n_masked, n)  # the row's last allowed step commits what is left
    commit_w = select_top(score, masked, n)  # (B, W)
    new = x.index_copy(1, window, torch.where(commit_w, tok, x_w))  # (B, L)
    committed = torch.zeros_like(gen).index_copy(1, window, commit_w)  # (B, L)
    if eos_id is not None:
        fill = eos_fill(new, gen, mask_id, eos_id)  # (B, L), ``new`` filled in place
        committed = committed | fill
    n_early = torch.zeros((), dtype=torch.long, device=x.device)
    if stop_ids is not None and early_eos_id is not None:
        left_w = block & (new.index_select(1, window) == mask_id)  # (B, W) still masked
        early = eos_early_fill(new, gen, mask_id, window, left_w, tok, early_eos_id, stop_ids)  # (B, L)
        new.masked_fill_(early, early_eos_id)
        committed = committed | early
        n_early = early.sum()
    left = (block & (new.index_select(1, window) == mask_id)).any()
    return new, committed, torch.stack([committed.any().long(), left.long(), n_early])

