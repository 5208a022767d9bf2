"""The fixed-shape greedy confidence step (mdlm.sampling.fused_step) against the general sampler step, and the
choice-noise annealing switch (CPU, deterministic)."""

from __future__ import annotations

import pytest
import torch

from mdlm.modeling import MDLMConfig, MDLMForMaskedLM
from mdlm.sampling import SamplerConfig, generate
from mdlm.sampling import config as config_module
from mdlm.sampling import policies as policies_module

from test_sampling import EOS, MASK, Recorder, ToyLM, make_canvas, rand_prompts

pytestmark = pytest.mark.usefixtures("one_thread")


def both_paths(monkeypatch, model, canvas, cfg, **kw):
    """(greedy-step run, general-path run) of the same call, each with its per-step callback record."""
    assert cfg.uses_greedy_step
    fast_rec, slow_rec = Recorder(), Recorder()
    fast = generate(model, canvas, mask_id=MASK, config=cfg, callback=fast_rec, **kw)
    with monkeypatch.context() as m:
        m.setattr(config_module.MDLMGenerationConfig, "uses_greedy_step", property(lambda self: False))
        slow = generate(model, canvas, mask_id=MASK, config=cfg, callback=slow_rec, **kw)
    return (fast, fast_rec), (slow, slow_rec)


@pytest.mark.parametrize("schedule,block_length,steps", [("even", 8, 24), ("cosine", None, 10), ("linear", 8, 12),
                                                          ("exp", 16, 7)])
@pytest.mark.parametrize("with_eos", [False, True])
@pytest.mark.parametrize("threshold", [None, 0.3])
def test_greedy_step_equals_general_step(monkeypatch, schedule, block_length, steps, with_eos, threshold):
    toy = ToyLM(seed=3)
    P, G = 5, 32

    def model(x, am=None):
        logits = toy(x, am).clone()
        if with_eos:
            logits[:, P + 9:, EOS] = 50.0  # rows end after 9 tokens: the EOS policy stops them
        return logits

    canvas = make_canvas(rand_prompts(3, P), G)
    cfg = SamplerConfig(steps=steps, block_length=block_length, schedule=schedule, temperature=0.0,
                        threshold=threshold)
    (fast, fr), (slow, sr) = both_paths(monkeypatch, model, canvas, cfg, eos_id=EOS if with_eos else None,
                                        suppress_tokens=[0])
    assert torch.equal(fast.sequences, slow.sequences)
    assert (fast.nfe, fast.steps, fast.positions) == (slow.nfe, slow.steps, slow.positions)
    assert len(fr.infos) == len(sr.infos) == fast.steps
    for a, b in zip(fr.infos, sr.infos):
        assert torch.equal(a.committed, b.committed)
        assert torch.allclose(a.masked_fraction, b.masked_fraction)
        assert (a.block, a.step_in_block, a.nfe) == (b.block, b.step_in_block, b.nfe)
    assert not (fast.sequences[:, P:] == 0).any()  # suppressed id never chosen
    if (with_eos and block_length) or threshold is not None:
        assert fast.nfe < steps  # the EOS policy / the threshold ended blocks early, on both paths


def test_greedy_step_left_padding_and_dual_cache(monkeypatch):
    torch.manual_seed(0)
    model = MDLMForMaskedLM(MDLMConfig(vocab_size=24, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                       intermediate_size=64, max_position_embeddings=64, mask_token_id=MASK)).eval()
    P, G = 6, 24
    canvas = make_canvas(rand_prompts(2, P), G)
    am = torch.ones_like(canvas)
    am[0, :2] = 0  # row 0 is left-padded
    for cache in ("none", "dual", "prefix"):
        cfg = SamplerConfig(steps=12, block_length=8, schedule="even", temperature=0.0, cache=cache)
        with torch.no_grad():
            (fast, _), (slow, _) = both_paths(monkeypatch, model, canvas, cfg, attention_mask=am)
        assert torch.equal(fast.sequences, slow.sequences), cache
        assert (fast.nfe, fast.positions) == (slow.nfe, slow.positions), cache
        assert torch.equal(fast.sequences[0, :2], canvas[0, :2])  # padding untouched


@pytest.mark.parametrize("anneal", [True, False])
def test_choice_noise_annealed_or_constant(monkeypatch, anneal):
    seen = []
    real = policies_module.add_choice_noise

    def spy(score, alpha, generator):
        seen.append(alpha)
        return real(score, alpha, generator)

    monkeypatch.setattr(policies_module, "add_choice_noise", spy)
    S = 4
    cfg = SamplerConfig(steps=S, schedule="linear", temperature=1.0, choice_temperature=2.0, choice_anneal=anneal)
    assert not cfg.uses_greedy_step
    generate(ToyLM(seed=1), make_canvas(rand_prompts(1, 3), 8), mask_id=MASK, config=cfg,
             generator=torch.Generator().manual_seed(0))
    expected = [2.0 * (1 - (i + 1) / S) for i in range(S)] if anneal else [2.0] * S
    assert seen == pytest.approx(expected)


def test_switches_validated():
    with pytest.raises(ValueError, match="choice_noise_anneal"):
        SamplerConfig(choice_anneal="no")
    assert SamplerConfig(temperature=0.0).uses_greedy_step
    assert SamplerConfig(temperature=0.0, threshold=0.9).uses_greedy_step  # Fast-dLLM parallel decoding
    assert not SamplerConfig(temperature=0.0, cfg_scale=1.0).uses_greedy_step
    assert not SamplerConfig(temperature=1.0).uses_greedy_step
    assert SamplerConfig(temperature=0.0, cache="dual", block_length=8, cuda_graphs=True).cuda_graphs
    with pytest.raises(ValueError, match="cuda_graphs"):
        SamplerConfig(temperature=1.0, cuda_graphs=True)  # sampling noise: not the greedy step
    with pytest.raises(ValueError, match="cuda_graphs"):
        SamplerConfig(temperature=0.0, cuda_graphs="yes")


@pytest.mark.parametrize("rule", [dict(unmasking="fast_dllm", threshold=0.4), dict(unmasking="fast_dllm", factor=1.5),
                                  dict(unmasking="eb", eb_gamma=0.4)])
@pytest.mark.parametrize("early", [False, True])
@pytest.mark.parametrize("block_length", [8, None])
def test_the_adaptive_rules_greedy_step_equals_the_general_step(monkeypatch, rule, early, block_length):
    toy = ToyLM(seed=5, scale=2.0)
    P, G = 4, 24

    def model(x, am=None):
        logits = toy(x, am).clone()
        logits[:, P + 13:, EOS] += 6.0  # the text ends: the early stop has something to do
        return logits

    cfg = SamplerConfig(steps=G, block_length=block_length, temperature=0.0, eos_early_stop=early, **rule)
    (fast, fr), (slow, sr) = both_paths(monkeypatch, model, make_canvas(rand_prompts(3, P), G), cfg, eos_id=EOS,
                                        suppress_tokens=[0])
    assert torch.equal(fast.sequences, slow.sequences)
    assert (fast.nfe, fast.steps, fast.eos_early_filled) == (slow.nfe, slow.steps, slow.eos_early_filled)
    for a, b in zip(fr.infos, sr.infos):
        assert torch.equal(a.committed, b.committed)
    assert fast.nfe < G  # the rules commit in parallel here
