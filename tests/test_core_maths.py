"""Schedules, forward masking, loss and ELBO: the maths every run relies on."""

import math

import pytest
import torch

from mdlm.evaluation.elbo import elbo_nll
from mdlm.loss import diffusion_loss
from mdlm.masking import mask_tokens, sample_times
from mdlm.schedules import even_masked_counts, get_schedule

SCHEDULES = ["linear", "cosine", "exp", "log-exp", "arccos", "poly2"]


@pytest.mark.parametrize("name", SCHEDULES)
def test_schedule_endpoints_and_derivative(name):
    s = get_schedule(name)
    assert float(s.gamma(torch.tensor(0.0))) == pytest.approx(0.0, abs=1e-6)
    assert float(s.gamma(torch.tensor(1.0))) == pytest.approx(1.0, abs=1e-6)
    t = torch.linspace(0.05, 0.95, 19, dtype=torch.float64)
    h = 1e-6
    numeric = (s.gamma(t + h) - s.gamma(t - h)) / (2 * h)
    torch.testing.assert_close(s.dgamma(t), numeric, rtol=1e-4, atol=1e-6)
    assert torch.all(s.dgamma(t) > 0)  # strictly increasing


def test_unknown_schedule_lists_valid_names():
    with pytest.raises(ValueError, match="linear"):
        get_schedule("wiggly")


@pytest.mark.parametrize("name", SCHEDULES)
@pytest.mark.parametrize("t", [0.1, 0.5, 0.9])
def test_mdm_masking_rate_matches_gamma(name, t):
    """Independent masking: the masked share is γ(t) within 5 binomial standard deviations."""
    s = get_schedule(name)
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 100, (64, 4096), generator=g)
    tt = torch.full((64,), t)
    _, masked = mask_tokens(x, tt, s, mask_id=100, mode="mdm", generator=g)
    gamma = float(s.gamma(torch.tensor(t)))
    n = masked.numel()
    tol = 5 * math.sqrt(gamma * (1 - gamma) / n)
    assert abs(masked.float().mean().item() - gamma) < tol


def test_maskgit_masking_exact_count_and_protected():
    s = get_schedule("cosine")
    g = torch.Generator().manual_seed(1)
    x = torch.randint(0, 50, (8, 40), generator=g)
    protected = torch.zeros(8, 40, dtype=torch.bool)
    protected[:, :10] = True  # a prompt
    protected[3, 30:] = True  # padding in one row
    t = torch.linspace(0.05, 1.0, 8)
    noisy, masked = mask_tokens(x, t, s, mask_id=50, protected=protected, mode="maskgit", generator=g)
    n_elig = (~protected).sum(1).float()
    expect = torch.ceil(n_elig * s.gamma(t) - 1e-6).long()
    assert torch.equal(masked.sum(1), expect)
    assert not masked[protected].any()
    assert torch.equal(noisy[protected], x[protected])
    assert torch.all(noisy[masked] == 50)


def test_protected_positions_never_masked_even_at_t1():
    x = torch.arange(30).view(3, 10)
    protected = torch.rand(3, 10, generator=torch.Generator().manual_seed(0)) < 0.3
    _, masked = mask_tokens(x, torch.ones(3), get_schedule("linear"), 99, protected=protected)
    assert torch.equal(masked, ~protected)


def test_antithetic_times_cover_every_stratum_once():
    B = 16
    for seed in range(5):
        t = sample_times(B, generator=torch.Generator().manual_seed(seed))
        strata = torch.floor(t * B).long()
        assert sorted(strata.tolist()) == list(range(B))
    t = sample_times(B, t_min=0.2, generator=torch.Generator().manual_seed(0))
    assert t.min() >= 0.2 and t.max() <= 1.0
    strata = torch.floor((t - 0.2) / 0.8 * B).long()
    assert sorted(strata.tolist()) == list(range(B))


def _uniform_fn(V):
    return lambda x, am=None: torch.zeros(*x.shape, V)


def _perfect_fn(x0, V):
    def fn(x, am=None):
        return torch.nn.functional.one_hot(x0, V).float() * 1e4

    return fn


def test_elbo_of_perfect_model_is_zero():
    V = 37
    x0 = torch.randint(0, V - 1, (4, 50), generator=torch.Generator().manual_seed(0))
    res = elbo_nll(_perfect_fn(x0, V), x0, eligible=torch.ones_like(x0, dtype=torch.bool), mask_id=V - 1, num_samples=3)
    assert res.nats_per_token == pytest.approx(0.0, abs=1e-6)


def test_elbo_of_uniform_model_is_log_vocab():
    """A uniform predictor over the V−1 non-mask tokens: NELBO = N·log(V−1) exactly (any l, any mask)."""
    V = 37
    x0 = torch.randint(0, V - 1, (4, 50), generator=torch.Generator().manual_seed(0))
    eligible = torch.ones_like(x0, dtype=torch.bool)
    eligible[2, 40:] = False
    res = elbo_nll(_uniform_fn(V), x0, eligible=eligible, mask_id=V - 1, num_samples=2)
    assert res.nats_per_token == pytest.approx(math.log(V - 1), rel=1e-5)
    assert res.perplexity == pytest.approx(V - 1, rel=1e-4)


@pytest.mark.parametrize("name", ["linear", "cosine", "exp"])
def test_training_loss_of_uniform_model_matches_closed_form(name):
    """E_t[γ'/γ · #masked · log V'] / N over t ∈ [t_min, 1] = log V' · (1 − γ(t_min)) / (1 − t_min)."""
    s = get_schedule(name)
    V, t_min = 21, 0.1
    g = torch.Generator().manual_seed(0)
    x0 = torch.randint(0, V - 1, (2048, 64), generator=g)
    t = sample_times(2048, t_min=t_min, generator=g)
    noisy, masked = mask_tokens(x0, t, s, V - 1, generator=g)
    out = diffusion_loss(
        torch.zeros(2048, 64, V), x0, masked, t, s, eligible=torch.ones_like(masked), mask_id=V - 1
    )
    expect = math.log(V - 1) * (1 - float(s.gamma(torch.tensor(t_min)))) / (1 - t_min)
    assert out.loss.item() == pytest.approx(expect, rel=0.01)


def test_loss_of_perfect_model_is_zero_and_maskgit_weighting_is_plain_ce():
    V = 11
    x0 = torch.randint(0, V - 1, (8, 16), generator=torch.Generator().manual_seed(0))
    t = torch.full((8,), 0.5)
    _, masked = mask_tokens(x0, t, get_schedule("linear"), V - 1, generator=torch.Generator().manual_seed(1))
    perfect = torch.nn.functional.one_hot(x0, V).float() * 1e4
    out = diffusion_loss(perfect, x0, masked, t, get_schedule("linear"), eligible=torch.ones_like(masked), mask_id=V - 1)
    assert out.loss.item() == pytest.approx(0.0, abs=1e-6)
    uni = diffusion_loss(
        torch.zeros(8, 16, V), x0, masked, t, get_schedule("linear"), eligible=torch.ones_like(masked),
        mask_id=V - 1, weighting="maskgit", normalization="sequence",
    )
    expect = (masked.sum(1).float() * math.log(V - 1) / 16).mean()
    assert uni.loss.item() == pytest.approx(expect.item(), rel=1e-5)


def test_gathered_logits_equal_full_logits():
    V = 9
    g = torch.Generator().manual_seed(0)
    x0 = torch.randint(0, V - 1, (3, 7), generator=g)
    logits = torch.randn(3, 7, V, generator=g)
    masked = torch.rand(3, 7, generator=g) < 0.5
    t = torch.full((3,), 0.4)
    a = diffusion_loss(logits, x0, masked, t, get_schedule("cosine"), eligible=torch.ones_like(masked), mask_id=V - 1)
    b = diffusion_loss(logits[masked], x0, masked, t, get_schedule("cosine"), eligible=torch.ones_like(masked), mask_id=V - 1)
    assert a.loss.item() == pytest.approx(b.loss.item(), rel=1e-6)


@pytest.mark.slow  # ~20 s: one torch.compile on the CPU
def test_compiled_cross_entropy_matches_eager_loss_and_gradients():
    """The Trainer's ``fused_ce`` path (torch.compile, dynamic row count) gives the eager values and gradients."""
    torch.manual_seed(0)
    sched = get_schedule("linear")
    for B, L in ((2, 12), (3, 9)):  # two shapes: the second reuses the dynamic graph
        x0 = torch.randint(0, 30, (B, L))
        t = sample_times(B, t_min=0.05)
        _, masked = mask_tokens(x0, t, sched, 31)
        logits = torch.randn(int(masked.sum()), 32, dtype=torch.bfloat16, requires_grad=True)
        grads = []
        for fused in (False, True):
            out = diffusion_loss(logits, x0, masked, t, sched, eligible=torch.ones_like(masked), mask_id=31,
                                 fused_ce=fused)
            grads.append(torch.autograd.grad(out.loss, logits)[0].float())
            assert torch.isfinite(out.loss)
            if fused:
                torch.testing.assert_close(out.loss, ref, rtol=1e-5, atol=1e-6)
            ref = out.loss
        torch.testing.assert_close(grads[1], grads[0], rtol=1e-3, atol=1e-6)
        assert float(grads[0][:, 31].abs().max()) == 0.0  # the [MASK] logit gets no gradient


@pytest.mark.parametrize("name", ["linear", "cosine", "exp", "poly2"])
def test_sampler_counts_schedule(name):
    s = get_schedule(name)
    c = s.masked_counts(torch.tensor([64, 10]), 8)
    assert c[:, 0].tolist() == [64, 10] and c[:, -1].tolist() == [0, 0]
    commits = c[:, :-1] - c[:, 1:]
    assert torch.all(commits >= 1)  # N ≥ steps: every step commits
    # interior steps follow ⌊N γ(1 − i/T)⌋ wherever the ≥1 rule does not bind
    i = torch.arange(1, 8)
    target = torch.floor(64 * s.gamma(1 - i.double() / 8) + 1e-9).long()
    free = (target <= c[0, :-2] - 1) & (target >= 8 - i)
    assert torch.equal(c[0, 1:-1][free], target[free])


def test_even_counts_are_llada_split():
    c = even_masked_counts(torch.tensor([10, 3]), 4)
    assert c.tolist() == [[10, 7, 4, 2, 0], [3, 2, 1, 0, 0]]
