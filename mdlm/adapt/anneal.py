"""Attention-mask annealing from causal to bidirectional while adapting an AR LM (DiffuLLaMA / DiffuGPT).

Gong et al. 2025, "Scaling Diffusion Language Models via Adaptation from Autoregressive Models" (ICLR), §3:
instead of switching the source LM's causal mask to full attention at once, the adaptation opens it gradually over
the first training steps. Our reading: at step s of ``anneal_steps``, every entry above the diagonal of the causal
mask (query i, key j > i) is opened independently with probability ``ratio = s / anneal_steps``, drawn afresh for
each forward; from ``anneal_steps`` on the mask is fully bidirectional (what the sampler and the ELBO use).

``anneal_ratio`` is the schedule, ``annealed_attention_mask`` the mask, ``AttentionAnnealCallback`` the Trainer
callback that sets each step's ratio on the model (``CausalBackboneForMaskedLM.attention_anneal``). Evaluation always
runs bidirectionally.
"""

from __future__ import annotations

import torch
from transformers import TrainerCallback

Tensor = torch.Tensor


def anneal_ratio(step: int, anneal_steps: int) -> float:
    """Share of the causal mask's upper triangle opened at optimizer step ``step`` (completed steps, counted from 0:
    the first step trains causally, the last annealed one opens (N−1)/N): linear 0 → 1 over ``anneal_steps`` = N,
    1.0 from then on and always for N = 0 (no annealing). Raises ValueError for N < 0."""
    if anneal_steps < 0:
        raise ValueError(f"anneal_steps must be ≥ 0, got {anneal_steps}")
    if anneal_steps == 0:
        return 1.0
    return min(1.0, max(0.0, step / anneal_steps))


def annealed_attention_mask(
    batch: int,
    length: int,
    ratio: float,
    *,
    key_padding: Tensor | None = None,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    """(B, 1, L, L) bool, True = query i may attend to key j: the causal mask (j ≤ i) with each entry above the
    diagonal opened independently with probability ``ratio`` (per row of the batch); ratio 0 = causal, 1 = full.
    ``key_padding`` (B, L), 1 = token / 0 = padding: padding keys are closed for every query, and every query still
    sees itself (no empty row for SDPA). ``generator`` (on ``device``) makes the draw reproducible. L is the length
    the backbone sees (one more than the canvas under the Dream alignment: its separator column).
    Raises ValueError for a ratio outside [0, 1]."""
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"ratio must be in [0, 1], got {ratio}")
    device = key_padding.device if key_padding is not None and device is None else device
    idx = torch.arange(length, device=device)
    allowed = (idx[None, :] <= idx[:, None]).expand(batch, 1, length, length)  # (B, 1, L, L) causal
    if ratio >= 1.0:
        allowed = torch.ones_like(allowed)
    elif ratio > 0.0:
        opened = torch.rand(batch, 1, length, length, generator=generator, device=device) < ratio  # (B, 1, L, L)
        allowed = allowed | opened
    if key_padding is not None:
        allowed = allowed & key_padding.bool()[:, None, None, :]
        allowed = allowed | torch.eye(length, dtype=torch.bool, device=device)
    return allowed


class AttentionAnnealCallback(TrainerCallback):
    """Sets ``attention_anneal = (ratio, generator)`` on every ``CausalBackboneForMaskedLM`` inside the trained model at
    the start of each optimizer step (``None`` once the ratio reaches 1, with one printed line). The generator is
    seeded from (seed, step, process), so a resumed run draws the same masks as an uninterrupted one and the global
    RNG is left alone; the micro-batches of one step (gradient accumulation) share its ratio and draw different
    masks from it. Raises ValueError for ``anneal_steps`` < 0."""

    def __init__(self, anneal_steps: int, seed: int = 0):
        anneal_ratio(0, anneal_steps)  # validates
        self.anneal_steps, self.seed, self._said_done = anneal_steps, seed, False

    def on_step_begin(self, args, state, control, model=None, **kwargs):
        from ..modeling.causal_backbone import CausalBackboneForMaskedLM

        ratio = anneal_ratio(state.global_step, self.anneal_steps)
        for m in (model.modules() if model is not None else ()):
            if not isinstance(m, CausalBackboneForMaskedLM):
                continue
            if ratio >= 1.0:
                if m.attention_anneal is not None and not self._said_done and args.process_index == 0:
                    print(f"attention-mask annealing done at step {state.global_step}: bidirectional from here",
                          flush=True)
                    self._said_done = True
                m.attention_anneal = None
                continue
            dev = next(m.parameters()).device
            g = torch.Generator(device=dev)
            g.manual_seed((self.seed * 1_000_003 + state.global_step) * 1_009 + args.process_index)
            m.attention_anneal = (ratio, g)
