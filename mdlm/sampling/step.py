"""One denoising step of a block: runner → guidance and suppression → policy → commit → ReMDM re-masking → EOS.

:class:`Sampling` holds what one :func:`~mdlm.sampling.generate` call shares between its steps; :class:`DenoiseStep`
is the general step for every policy (its greedy confidence setting also has the fixed-shape fast path of
:mod:`.greedy`). Vectorised over the batch: one host synchronisation per step for the (M,) indices of the
block's masked positions (reused by every gather and scatter), one for "did the canvas change".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from .blocks import Block
from .cfg import cfg_active, guide, schedule_time_after
from .adaptive import eos_early_fill
from .eos import eos_fill
from .policies import Policy, PolicyInput, scatter
from .remasking import choose_remask
from .runner import ModelRunner
from .token_choice import apply_suppression, suppress_ids

Tensor = torch.Tensor


@dataclass
class Sampling:
    """The state of one generation: canvas ``x`` (updated in place), generated / condition positions, settings."""

    config: Any  # MDLMGenerationConfig
    runner: ModelRunner
    policy: Policy
    x: Tensor
    gen: Tensor
    mask_id: int
    eos_id: int | None  # None: no EOS policy
    suppress_tokens: Any
    generator: torch.Generator
    vocab_size: int | None = None  # ids ≥ it are never sampled (a padded LM head's extra rows)
    ids: Tensor | None = None  # the suppressed ids, made at the first logits (their width is the vocabulary)
    n_gen: Tensor = field(init=False)
    no_guidance: Tensor = field(init=False)
    stored_conf: Tensor | None = None  # (B, L) float64 confidence at commit time (ReMDM)
    early_eos_id: int | None = None  # eos_early_stop: the EOS id filled in (None: off)
    stop_ids: Tensor | None = None  # eos_early_stop: the ids that count as "the text has ended" (EOS, pad)
    early_filled: int = 0  # positions filled by eos_early_stop (summed over rows)

    def __post_init__(self) -> None:
        self.n_gen = self.gen.sum(dim=1)  # (B,)
        self.no_guidance = torch.zeros(self.x.shape[0], dtype=torch.bool, device=self.x.device)
        if self.config.remdm_eta > 0:
            self.stored_conf = torch.zeros(self.x.shape, dtype=torch.float64, device=self.x.device)

    def masked_fraction(self) -> Tensor:
        """(B,) float64: share of each row's generated positions still masked."""
        return (self.gen & (self.x == self.mask_id)).sum(dim=1).double() / self.n_gen.clamp_min(1)

    def suppressed(self, vocab: int) -> Tensor:
        if self.ids is None:
            self.ids = suppress_ids(self.suppress_tokens, self.mask_id, vocab, self.x.device, self.vocab_size)
        return self.ids


@dataclass
class StepReport:
    """What a step did, for callbacks: committed / remasked (B, L) bool (None: nothing), masked_fraction (B,)
    before the step, guided (B,) rows; ``finished``: the block has no masked position left."""

    committed: Tensor | None
    remasked: Tensor | None
    masked_fraction: Tensor | None
    guided: Tensor
    finished: bool = False


class DenoiseStep:
    """The general step (every policy, guidance, ReMDM, EOS)."""

    graph_replays = 0

    def __init__(self, run: Sampling, want_info: bool):
        self.run, self.want_info = run, want_info

    def start_block(self, block: Block) -> None:
        pass

    def logits(self, block: Block, i: int, midx: tuple[Tensor, Tensor], n_masked: Tensor,
               frac: Tensor) -> tuple[Tensor, Tensor]:
        """Guided, suppressed logits (M, V) of the masked positions, and the guided rows (B,)."""
        run, cfg = self.run, self.run.config
        guided, any_guided = run.no_guidance, False
        if cfg.guidance_scale > 0:
            guided = cfg_active(cfg.guidance_time, cfg.guidance_interval, frac, schedule_time_after(i, block.S))
            guided &= n_masked > 0
            any_guided = bool(guided.any())
        if not cfg.reuse_logits:
            run.runner.invalidate()
        c, u = run.runner.window(run.x, any_guided, block.lo, block.hi)  # (B, W, V) each
        logits = c[midx].float()  # (M, V): only the masked positions need tokens and scores
        if u is not None and any_guided:
            logits = guide(logits, u[midx].float(), float(cfg.guidance_scale), guided[midx[0]])
        return apply_suppression(logits, run.suppressed(logits.shape[-1])), guided

    def resampler(self, guided: Tensor, lo: int):
        """``logits_at(xs, sel, idx, slot)`` for the moment sampler's sub-steps (same guidance and suppression)."""
        run, cfg = self.run, self.run.config

        def logits_at(xs: Tensor, sel: tuple[Tensor, Tensor], idx: Tensor, slot: Tensor) -> Tensor:
            any_guided = cfg.guidance_scale > 0 and bool(guided.any())
            c, u = run.runner.columns(xs, sel, any_guided, lo, idx, slot)
            logits = c.float()  # (Ms, V)
            if u is not None:
                logits = guide(logits, u.float(), float(cfg.guidance_scale), guided[sel[0]])
            return apply_suppression(logits, run.suppressed(logits.shape[-1]))

        return logits_at

    def remask(self, block: Block, i: int, xw: Tensor, commit: Tensor, conf: Tensor) -> Tensor | None:
        """ReMDM: send a share of the block's earlier commits back to [MASK] (``xw`` (B, W) updated in place)."""
        run, cfg = self.run, self.run.config
        lo, hi = block.lo, block.hi
        run.stored_conf[:, lo:hi] = torch.where(commit, conf.double(), run.stored_conf[:, lo:hi])
        r_lo, r_hi = cfg.remdm_interval
        if not (i < block.S - 1 and r_lo < 1.0 - (i + 1) / block.S <= r_hi):
            return None
        old = block.blk & (xw != run.mask_id) & ~commit
        remasked = choose_remask(old, run.stored_conf[:, lo:hi], float(cfg.remdm_eta), cfg.remdm_strategy,
                                 run.generator)
        xw.masked_fill_(remasked, run.mask_id)
        return remasked

    def early_stop(self, block: Block, masked: Tensor, d: Any, midx: tuple[Tensor, Tensor]) -> Tensor:
        """EOS-aware early termination (:func:`.adaptive.eos_early_fill`) on the canvas after the step's commits."""
        run, x = self.run, self.run.x
        window = torch.arange(block.lo, block.hi, device=x.device)
        left = block.blk & (x[:, block.lo:block.hi] == run.mask_id)  # (B, W) still masked (re-masked ones too)
        tok_w = scatter(masked, d.tokens, run.mask_id, midx)  # (B, W) the step's predictions
        early = eos_early_fill(x, run.gen, run.mask_id, window, left, tok_w, run.early_eos_id, run.stop_ids)
        x.masked_fill_(early, run.early_eos_id)
        run.early_filled += int(early.sum())
        return early

    def __call__(self, block: Block, i: int) -> StepReport | None:
        run, x, lo, hi = self.run, self.run.x, block.lo, block.hi
        masked = block.blk & (x[:, lo:hi] == run.mask_id)  # (B, W)
        midx = masked.nonzero(as_tuple=True)  # 2 × (M,): the step's host synchronisation
        if midx[0].numel() == 0:
            return None
        n_masked = masked.sum(dim=1)  # (B,)
        frac = run.masked_fraction()
        logits, guided = self.logits(block, i, midx, n_masked, frac)
        target = (n_masked - block.counts[:, i + 1]).clamp_min(0)  # (B,) the schedule's count
        d = run.policy.step(PolicyInput(logits, masked, midx, n_masked, target, i, block.S, run.generator, x, lo, hi,
                                        run.mask_id, self.resampler(guided, lo), block.S_row))
        xw = torch.where(d.commit, scatter(masked, d.tokens, run.mask_id, midx), x[:, lo:hi])
        remasked = self.remask(block, i, xw, d.commit, d.conf) if run.stored_conf is not None else None
        x[:, lo:hi] = xw
        changed = d.commit if remasked is None else d.commit | remasked
        eos = eos_fill(x, run.gen, run.mask_id, run.eos_id) if run.eos_id is not None else None  # (B, L)
        if run.stop_ids is not None:
            early = self.early_stop(block, masked, d, midx)  # (B, L)
            eos = early if eos is None else eos | early
        if bool(changed.any() if eos is None else changed.any() | eos.any()):  # else the logits stay valid
            run.runner.invalidate()
        if not self.want_info:
            return StepReport(None, None, frac, guided)
        committed = _on_canvas(d.commit, x, lo, hi)
        if eos is not None:
            committed |= eos
        return StepReport(committed, None if remasked is None else _on_canvas(remasked, x, lo, hi), frac, guided)


def _on_canvas(window: Tensor, x: Tensor, lo: int, hi: int) -> Tensor:
    """(B, W) window mask → (B, L) canvas mask."""
    out = torch.zeros(x.shape, dtype=torch.bool, device=x.device)
    out[:, lo:hi] = window
    return out
