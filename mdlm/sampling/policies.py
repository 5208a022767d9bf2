"""Unmasking policies: which masked positions of the block a step commits, and with which tokens.

Each policy is a small frozen dataclass (its own settings) with one method,
``step(s: PolicyInput) -> Decision``. The loop (:mod:`.loop`) gives it the processed logits (guided,
suppressed) of the block's M masked positions and the schedule's count; the policy returns the commits.

* :class:`ConfidencePolicy` — MaskGIT / LLaDA: a token everywhere, then the ``target`` most confident positions
  (prob / margin / entropy / random), with MaskGIT's annealed Gumbel choice noise and an optional Fast-dLLM
  threshold on top of the count. Its greedy setting has a fixed-shape fast path (:mod:`.greedy`).
* :class:`FastDLLMPolicy` — Fast-dLLM's threshold rule: the most confident position plus every position at or
  above the threshold; ``steps`` is only a cap (a block's last allowed step commits what is left).
  With ``factor`` it is Fast-dLLM's factor rule instead.
* :class:`EntropyBoundedPolicy` — the EB-sampler: the longest low-entropy prefix with Σ H − max H ≤ γ.
* :class:`AncestralPolicy` — MDLM's reverse step: each masked position unmasks with prob (γ(t) − γ(s)) / γ(t).
* :class:`MomentPolicy` — Hayakawa et al. 2025's choose-then-sample moment sampler (hybrid, sub-steps).

Adding a policy: a dataclass with ``step`` and a line in :func:`make_policy`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from mdlm.schedules import get_schedule

from .adaptive import entropy, entropy_bounded_count, factor_count
from .confidence import add_choice_noise, confidence_and_score, select_top
from .moment import moment_choose, moment_log_probs, moment_log_weights, moment_tokens
from .remasking import ancestral_commit, ancestral_commit_prob
from .substeps import draw_in_groups
from .token_choice import sample_tokens

Tensor = torch.Tensor


@dataclass
class PolicyInput:
    """What a policy sees at step ``i`` of ``S`` of a block (W = the block's window width, M = masked positions).

    ``logits`` (M, V): guided, suppressed logits of the masked positions ``masked`` (B, W), in the order of
    ``midx`` (its nonzero indices); ``n_masked`` (B,); ``target`` (B,): commits the schedule asks for;
    ``resample(xs, sel, idx, slot)`` → processed logits (Ms, V) of canvas ``xs`` at the window positions ``sel``
    (the moment sampler's sub-steps); ``x``, ``lo``, ``hi``: the canvas and the window's columns."""

    logits: Tensor
    masked: Tensor
    midx: tuple[Tensor, Tensor]
    n_masked: Tensor
    target: Tensor
    i: int
    S: int
    generator: torch.Generator
    x: Tensor
    lo: int
    hi: int
    mask_id: int
    resample: Callable[..., Tensor] | None = None
    S_row: Tensor | None = None  # (B,) each row's own steps in this block (rows of unequal length)


@dataclass
class Decision:
    """commit (B, W) bool; tokens (M,) long at the masked positions; conf (B, W) float64 (0 off ``masked``),
    the confidence ReMDM re-masking ranks committed tokens by."""

    commit: Tensor
    tokens: Tensor
    conf: Tensor


def scatter(where: Tensor, values: Tensor, fill: float | int, idx: tuple[Tensor, Tensor]) -> Tensor:
    """The (M,) ``values`` at the positions ``idx`` (= ``where.nonzero(as_tuple=True)``, no host sync) of a
    (B, W) tensor, ``fill`` elsewhere."""
    out = torch.full(where.shape, fill, dtype=values.dtype, device=values.device)
    out[idx] = values
    return out


@dataclass(frozen=True)
class ConfidencePolicy:
    """MaskGIT / LLaDA: commit the ``target`` masked positions with the highest confidence (plus, with a
    threshold, every one at or above it — at least one); ``choice_noise`` α·(1 − (i+1)/S) Gumbel on the score."""

    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None
    confidence: str = "prob"
    choice_noise: float = 0.0
    anneal: bool = True
    threshold: float | None = None

    def tokens_and_confidence(self, s: PolicyInput) -> tuple[Tensor, Tensor, Tensor]:
        tok = sample_tokens(s.logits, self.temperature, self.top_k, self.top_p, s.generator)  # (M,)
        conf_m, score_m = confidence_and_score(s.logits, tok, self.confidence, s.generator)  # (M,) f64
        return tok, conf_m, score_m

    def count(self, s: PolicyInput, conf: Tensor) -> Tensor:
        n = s.target
        if self.threshold is not None:
            n_thr = (s.masked & (conf >= float(self.threshold))).sum(dim=1)
            n = torch.maximum(torch.maximum(n, n_thr), (s.n_masked > 0).long())
        return n

    def step(self, s: PolicyInput) -> Decision:
        tok, conf_m, score_m = self.tokens_and_confidence(s)
        conf = scatter(s.masked, conf_m, 0.0, s.midx)  # (B, W)
        n = self.count(s, conf)
        alpha = self.choice_noise * ((1.0 - (s.i + 1) / s.S) if self.anneal else 1.0)
        score_m = add_choice_noise(score_m, alpha, s.generator)
        commit = select_top(scatter(s.masked, score_m, float("-inf"), s.midx), s.masked, n)  # (B, W)
        return Decision(commit, tok, conf)


def last_step(s: PolicyInput, like: Tensor) -> Tensor:
    """(B,) bool: this is the row's last allowed step of the block (it must commit everything left)."""
    if s.S_row is not None:
        return s.i >= (s.S_row - 1)
    return torch.full_like(like, s.i == s.S - 1, dtype=torch.bool)


@dataclass(frozen=True)
class FastDLLMPolicy(ConfidencePolicy):
    """Fast-dLLM (Wu et al. 2025): per row, the most confident masked position of the block plus every masked
    position whose confidence ≥ ``threshold`` — or, with ``factor``, the n most confident with
    (n + 1)·(1 − c_(n)) < factor (:func:`.adaptive.factor_count`); the schedule's count is ignored, except that
    the block's last allowed step commits everything left (``steps`` ≥ the generated length: exactly Fast-dLLM)."""

    factor: float | None = None

    def count(self, s: PolicyInput, conf: Tensor) -> Tensor:
        if self.factor is not None:
            n = factor_count(1.0 - conf, s.masked, self.factor)  # (B,)
        else:
            n_thr = (s.masked & (conf >= float(self.threshold))).sum(dim=1)  # (B,)
            n = torch.maximum(n_thr, (s.n_masked > 0).long())
        return torch.where(last_step(s, n), s.n_masked, n)  # a row's last allowed step commits what is left


@dataclass(frozen=True)
class EntropyBoundedPolicy(ConfidencePolicy):
    """EB-sampler (Ben-Hamu et al. 2025): order the block's masked positions by entropy (ascending, ties → lower
    index) and commit the longest prefix with Σ H − max H ≤ ``gamma`` (:func:`.adaptive.entropy_bounded_count`),
    at least one; ``steps`` is only a cap (the row's last allowed step commits what is left). Tokens are drawn as
    the confidence policy draws them (temperature, top-k / top-p)."""

    gamma: float = 0.1

    def step(self, s: PolicyInput) -> Decision:
        tok, conf_m, _ = self.tokens_and_confidence(s)
        ent = scatter(s.masked, entropy(s.logits), float("inf"), s.midx)  # (B, W) float64
        n = entropy_bounded_count(ent, s.masked, self.gamma)  # (B,)
        n = torch.where(last_step(s, n), s.n_masked, n)
        commit = select_top(-ent, s.masked, n)  # lowest entropy first
        return Decision(commit, tok, scatter(s.masked, conf_m, 0.0, s.midx))


@dataclass(frozen=True)
class AncestralPolicy(ConfidencePolicy):
    """MDLM's ancestral step: each masked position commits with prob (γ(t) − γ(s)) / γ(t), t = 1 − i/S,
    s = 1 − (i+1)/S (all at the block's last step); the count is random, not the schedule's."""

    schedule: str = "linear"

    def step(self, s: PolicyInput) -> Decision:
        tok, conf_m, _ = self.tokens_and_confidence(s)
        gamma = get_schedule(self.schedule)
        t_now = torch.tensor(1.0 - s.i / s.S, dtype=torch.float64)
        t_next = torch.tensor(1.0 - (s.i + 1) / s.S, dtype=torch.float64)
        p = ancestral_commit_prob(float(gamma.gamma(t_now)), float(gamma.gamma(t_next)))
        commit = ancestral_commit(s.masked, 1.0 if s.i == s.S - 1 else p, s.generator)
        return Decision(commit, tok, scatter(s.masked, conf_m, 0.0, s.midx))


@dataclass(frozen=True)
class MomentPolicy:
    """Choose-then-sample (Hayakawa et al. 2025, :mod:`.moment`): positions by Gumbel-top-k of log ‖p_i‖_β^β
    (``hybrid`` share greedily), then tokens from p_i^β; ``substeps`` > 1 draws them in groups, each from
    logits that see the groups before it."""

    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None
    alpha: float = 0.0
    hybrid: float = 0.0
    substeps: int = 1

    def step(self, s: PolicyInput) -> Decision:
        logp = moment_log_probs(s.logits, self.temperature, self.top_k, self.top_p)  # (M, V) f64
        logw = scatter(s.masked, moment_log_weights(logp, self.alpha), float("-inf"), s.midx)  # (B, W)
        commit = moment_choose(logw, s.masked, s.target, self.alpha, self.hybrid, s.generator)
        tok = moment_tokens(logp, self.alpha, self.temperature, s.generator)  # (M,)
        if self.substeps > 1:
            def redraw(logits: Tensor) -> Tensor:
                lp = moment_log_probs(logits, self.temperature, self.top_k, self.top_p)
                return moment_tokens(lp, self.alpha, self.temperature, s.generator)

            tok_w = draw_in_groups(s.x, logw, commit, scatter(s.masked, tok, s.mask_id, s.midx), self.substeps,
                                   s.lo, s.hi, s.resample, redraw)
            tok = tok_w[s.midx]
        conf = scatter(s.masked, logp.gather(-1, tok.unsqueeze(-1)).squeeze(-1).exp(), 0.0, s.midx)
        return Decision(commit, tok, conf)


Policy = ConfidencePolicy | MomentPolicy


def make_policy(c) -> Policy:
    """The policy of an :class:`~mdlm.sampling.config.MDLMGenerationConfig`."""
    tokens = {"temperature": c.temperature, "top_k": c.top_k, "top_p": c.top_p}
    if c.unmasking == "moment":
        return MomentPolicy(**tokens, alpha=float(c.moment_alpha), hybrid=float(c.moment_hybrid),
                            substeps=c.moment_substeps)
    conf = {**tokens, "confidence": c.confidence, "choice_noise": float(c.choice_noise),
            "anneal": c.choice_noise_anneal, "threshold": c.threshold}
    if c.unmasking == "ancestral":
        return AncestralPolicy(**conf, schedule="linear" if c.uses_even_schedule else c.schedule)
    if c.unmasking == "fast_dllm":
        return FastDLLMPolicy(**conf, factor=None if c.factor is None else float(c.factor))
    if c.unmasking == "eb":
        return EntropyBoundedPolicy(**conf, gamma=float(c.eb_gamma))
    return ConfidencePolicy(**conf)
