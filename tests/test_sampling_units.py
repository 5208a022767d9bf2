"""Unit tests of the pure functions of mdlm.sampling (CPU, fast, deterministic)."""

from __future__ import annotations

import math

import pytest
import torch

from mdlm.sampling.cfg import cfg_active, guide, unconditional_input
from mdlm.sampling.confidence import add_choice_noise, confidence_and_score, select_top
from mdlm.sampling.eos import eos_fill, eos_lengths
from mdlm.sampling.moment import moment_choose, moment_log_weights, moment_tokens
from mdlm.sampling.remasking import ancestral_commit_prob, choose_remask
from mdlm.sampling.token_choice import apply_suppression, filter_top_k, filter_top_p, sample_tokens, suppress_ids


pytestmark = pytest.mark.usefixtures("one_thread")


def g(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_select_top_per_row_counts_and_eligibility():
    score = torch.tensor([[0.1, 0.9, 0.5, 0.7], [float("-inf"), 0.2, 0.3, 0.1]], dtype=torch.float64)
    eligible = torch.tensor([[True, False, True, True], [True, True, False, True]])
    sel = select_top(score, eligible, torch.tensor([2, 2]))
    assert sel.tolist() == [[False, False, True, True], [False, True, False, True]]
    # an eligible −inf score is still chosen before anything ineligible; n is clamped
    sel = select_top(score, eligible, torch.tensor([0, 5]))
    assert sel.tolist() == [[False] * 4, [True, True, False, True]]


def test_top_k_top_p_filters():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    assert torch.isinf(filter_top_k(logits, 2)).tolist() == [[False, False, True, True]]
    assert torch.isinf(filter_top_p(logits, 0.8)).tolist() == [[False, False, True, True]]
    assert torch.isinf(filter_top_p(logits, 0.81)).tolist() == [[False, False, False, True]]
    assert torch.isinf(filter_top_p(logits, 0.1)).tolist() == [[False, True, True, True]]
    shuffled = logits[:, [2, 0, 3, 1]]
    assert torch.isinf(filter_top_p(shuffled, 0.8)).tolist() == [[True, False, True, False]]


def test_suppression_and_sampling_frequencies():
    ids = suppress_ids([1, 99], mask_id=3, vocab_size=4, device=torch.device("cpu"))
    assert ids.tolist() == [1, 3]  # mask always added, out-of-vocabulary ids dropped
    logits = apply_suppression(torch.zeros(1, 20000, 4), ids)
    tok = sample_tokens(logits, 1.0, None, None, g())
    assert set(tok.unique().tolist()) == {0, 2}
    p = torch.tensor([0.6, 0.3, 0.1])
    tok = sample_tokens(p.log().expand(1, 40000, 3).contiguous(), 1.0, None, None, g(1))
    freq = torch.bincount(tok.flatten(), minlength=3).double() / tok.numel()
    assert torch.allclose(freq, p.double(), atol=0.01)
    assert sample_tokens(p.log().view(1, 1, 3), 0.0, None, None, g()).item() == 0


def test_confidences():
    p = torch.tensor([[[0.7, 0.2, 0.1]]])
    tok = torch.tensor([[1]])
    conf, score = confidence_and_score(p.log(), tok, "prob", g())
    assert conf.item() == pytest.approx(0.2) and score.item() == pytest.approx(math.log(0.2))
    conf, _ = confidence_and_score(p.log(), tok, "margin", g())
    assert conf.item() == pytest.approx(0.5)
    conf, _ = confidence_and_score(p.log(), tok, "entropy", g())
    assert conf.item() == pytest.approx(sum(q * math.log(q) for q in (0.7, 0.2, 0.1)))
    # MaskGIT noise: zero scale is a no-op, positive scale perturbs in float64
    s = torch.zeros(2, 5, dtype=torch.float64)
    assert torch.equal(add_choice_noise(s, 0.0, g()), s)
    noisy = add_choice_noise(s, 1.0, g())
    assert noisy.dtype == torch.float64 and noisy.std() > 0


def test_cfg_formula_and_interval():
    c, u = torch.randn(2, 3, 5), torch.randn(2, 3, 5)
    out = guide(c, u, 2.0, torch.tensor([True, False]))
    assert torch.allclose(out[0], u[0] + 3.0 * (c[0] - u[0]), atol=1e-6)  # LLaDA's form, s + 1 = 3
    assert torch.equal(out[1], c[1])
    assert torch.equal(guide(c, u, 0.0, torch.tensor([True, True])), c)
    frac = torch.tensor([1.0, 0.5, 0.2, 0.0])
    assert cfg_active("masked", (0.2, 0.5), frac, 0.0).tolist() == [False, True, False, False]
    assert cfg_active("schedule", (0.1, 0.3), frac, 0.3).tolist() == [True] * 4
    assert cfg_active("schedule", (0.1, 0.3), frac, 0.1).tolist() == [False] * 4
    x = torch.tensor([[5, 6, 9, 9]])
    assert unconditional_input(x, torch.tensor([[True, False, False, False]]), 9).tolist() == [[9, 6, 9, 9]]


def test_moment_sampler_distributions():
    # two positions: a peaked and a flat distribution; α = 1 → β = 2
    p = torch.tensor([[0.9, 0.05, 0.05], [1 / 3, 1 / 3, 1 / 3]], dtype=torch.float64)
    logp = p.log().unsqueeze(0)  # (1, 2, 3)
    w = (p ** 2).sum(-1)
    assert torch.allclose(moment_log_weights(logp, 1.0)[0].exp(), w)
    assert torch.allclose(moment_log_weights(logp, 0.0)[0], p.max(-1).values.log())
    # position choice ∝ ‖p‖_β^β (many independent rows, one pick each)
    R = 20000
    lp = logp.expand(R, 2, 3).contiguous()
    logw = moment_log_weights(lp, 1.0)  # (R, 2)
    pick = moment_choose(logw, torch.ones(R, 2, dtype=torch.bool), torch.ones(R, dtype=torch.long), 1.0, 0.0, g(2))
    assert (pick.sum(-1) == 1).all()
    assert pick[:, 0].double().mean().item() == pytest.approx((w[0] / w.sum()).item(), abs=0.015)
    # hybrid = 1: always the greedy position
    pick = moment_choose(logw, torch.ones(R, 2, dtype=torch.bool), torch.ones(R, dtype=torch.long), 1.0, 1.0, g(2))
    assert pick[:, 0].all()
    # tokens ∝ p^β
    tok = moment_tokens(lp, 1.0, 1.0, g(3))[:, 0]
    freq = torch.bincount(tok, minlength=3).double() / R
    assert torch.allclose(freq, p[0] ** 2 / w[0], atol=0.01)
    assert moment_tokens(lp[:1], 0.0, 1.0, g()).tolist() == [[0, 0]]


def test_ancestral_prob_and_remask_choice():
    assert ancestral_commit_prob(1.0, 0.75) == pytest.approx(0.25)
    assert ancestral_commit_prob(0.5, 0.0) == 1.0
    old = torch.tensor([[True, True, True, True, False]])
    conf = torch.tensor([[0.9, 0.1, 0.5, 0.3, 0.0]], dtype=torch.float64)
    rm = choose_remask(old, conf, 0.5, "low_confidence", g())
    assert rm.tolist() == [[False, True, False, True, False]]
    assert not choose_remask(old, conf, 0.2, "low_confidence", g()).any()  # ⌊0.2·4⌋ = 0


def test_eos_fill_rule():
    M, E = 9, 7
    gen = torch.ones(3, 6, dtype=torch.bool)
    gen[:, 0] = False
    x = torch.tensor([[1, 2, E, M, M, M],   # everything masked is after the EOS → filled
                      [1, M, E, M, M, M],   # a mask before the EOS → keep going
                      [E, 2, 3, M, M, M]])  # the EOS is not a generated position → ignored
    fill = eos_fill(x, gen, M, E)
    assert fill.sum(1).tolist() == [3, 0, 0]
    assert x[0].tolist() == [1, 2, E, E, E, E] and (x[1] == M).sum() == 4
    assert eos_lengths(torch.tensor([[1, E, 2], [3, 4, 5]]), E).tolist() == [1, 3]
