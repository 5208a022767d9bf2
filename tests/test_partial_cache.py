"""Moment-sampler sub-steps and partial caching (Hayakawa et al. 2025): exactness where it must hold,
honest counts, approximation otherwise, padding, errors. Tiny random models on the CPU."""

from __future__ import annotations

import pytest
import torch

import mdlm  # noqa: F401
from mdlm.modeling import MDLMConfig, MDLMForMaskedLM
from mdlm.sampling.cached_calls import PartialCachedLogits
from mdlm.sampling import SamplerConfig, generate
from mdlm.sampling.substeps import chosen_columns, substep_groups

V, MASK, PAD = 64, 63, 62


pytestmark = pytest.mark.usefixtures("one_thread")


def tiny(layers: int = 2) -> MDLMForMaskedLM:
    torch.manual_seed(0)
    m = MDLMForMaskedLM(MDLMConfig(vocab_size=V, hidden_size=32, intermediate_size=64, num_hidden_layers=layers,
                                   num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                                   mask_token_id=MASK, pad_token_id=PAD, initializer_range=0.3))
    return m.to(torch.float64).eval()


def canvas(prompt_lens: list[int], gen: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    P = max(prompt_lens)
    x = torch.full((len(prompt_lens), P + gen), PAD)
    am = torch.zeros_like(x)
    for i, n in enumerate(prompt_lens):
        x[i, P - n:P] = torch.randint(0, 60, (n,), generator=g)
        am[i, P - n:] = 1
    x[:, P:] = MASK
    return x, am


def run(model, x, am, **kw):
    cfg = SamplerConfig(steps=4, sampler="moment", choice_temperature=1.0, temperature=1.0, **kw)
    with torch.no_grad():
        return generate(model, x, mask_id=MASK, config=cfg, attention_mask=am, generator=torch.Generator().manual_seed(0))


def test_substep_groups_split_by_weight():
    logw = torch.tensor([[0.1, 0.9, 0.5, 0.3, 0.7, 0.0]])
    chosen = torch.tensor([[True, True, True, True, True, False]])
    g = substep_groups(logw, chosen, 2)  # ranks by weight: 1,4,2 → group 0; 3,0 → group 1
    assert g.tolist() == [[1, 0, 0, 1, 0, -1]]
    g8 = substep_groups(logw, chosen, 8)[0]  # more groups than positions: one position each, in weight order
    assert sorted(g8[chosen[0]].tolist()) == sorted(set(g8[chosen[0]].tolist())) and int(g8.max()) <= 7
    assert g8[1] < g8[4] < g8[2] < g8[3] < g8[0]


def test_chosen_columns_index_and_slots():
    chosen = torch.tensor([[False, True, False, True], [True, False, False, False]])
    idx, slot = chosen_columns(chosen)
    assert idx.shape == (2, 2)
    for b in range(2):
        for w in range(4):
            if chosen[b, w]:
                assert idx[b, slot[b, w]] == w


def test_query_of_unchanged_columns_is_the_full_forward():
    model = tiny(3)
    x, am = canvas([5, 3], 12)
    p = PartialCachedLogits(model)
    full = p.fill(x, am)  # (B, L, V)
    idx = torch.tensor([[6, 9, 14], [7, 8, 16]])
    q = p.query(x, am, idx)  # same canvas: nothing stale
    torch.testing.assert_close(q, full.gather(1, idx[..., None].expand(-1, -1, V)))
    assert p.positions == x.shape[1] + 3


def test_one_layer_partial_cache_is_exact():
    """A one-layer model's cached K/V cannot go stale: partial caching == the exact sub-step trajectory."""
    model = tiny(1)
    x, am = canvas([4, 6, 2], 16)
    exact = run(model, x, am, substeps=3)
    part = run(model, x, am, substeps=3, partial_cache=True)
    assert torch.equal(exact.sequences, part.sequences)
    assert exact.nfe == part.nfe  # the same number of network calls ...
    assert part.positions < exact.positions  # ... over far fewer positions


@pytest.mark.parametrize("layers,exact", [(1, True), (3, False)])
def test_query_after_new_tokens_is_exact_only_for_one_layer(layers, exact):
    """Changed tokens at the queried columns: layer 1 is exact, deeper layers see stale cached K/V."""
    model = tiny(layers)
    x, am = canvas([5, 3], 12)
    p = PartialCachedLogits(model)
    p.fill(x, am)
    idx = torch.tensor([[6, 9, 14], [7, 8, 16]])
    x2 = x.scatter(1, idx[:, :2], torch.tensor([[3, 4], [5, 6]]))  # two of the queried columns get tokens
    q = p.query(x2, am, idx)
    full = model(input_ids=x2, attention_mask=am).logits.gather(1, idx[..., None].expand(-1, -1, V))
    if exact:
        torch.testing.assert_close(q, full)
    else:
        assert (q - full).abs().max() > 1e-6


def test_deeper_model_partial_cache_keeps_the_prompt_and_stays_close():
    model = tiny(3)
    x, am = canvas([4, 6], 16)
    exact = run(model, x, am, substeps=4)
    part = run(model, x, am, substeps=4, partial_cache=True)
    gen = x == MASK
    assert torch.equal(part.sequences[~gen], x[~gen])  # prompt and padding untouched
    assert not (part.sequences[gen] == MASK).any()
    assert (part.sequences[gen] == exact.sequences[gen]).double().mean() > 0.2  # same random stream, near trajectory


def test_substeps_cost_counts():
    model = tiny(2)
    x, am = canvas([4], 16)
    one = run(model, x, am)
    sub = run(model, x, am, substeps=2)
    L = x.shape[1]
    assert one.nfe == 4 and one.positions == 4 * L
    assert sub.nfe == 8 and sub.positions == 8 * L  # every step: its forward + one more full forward
    part = run(model, x, am, substeps=2, partial_cache=True)
    assert part.nfe == 8 and 4 * L < part.positions < 8 * L


def test_partial_cache_with_cfg_runs_both_rows():
    model = tiny(2)
    x, am = canvas([4, 5], 12)
    out = run(model, x, am, substeps=2, partial_cache=True, cfg_scale=1.0)
    exact = run(model, x, am, substeps=2, cfg_scale=1.0)
    assert not (out.sequences == MASK).any()
    # every pass is conditional + unconditional: 4 step forwards, plus a sub-step where a step chose ≥ 2 positions
    assert out.nfe % 2 == 0 and 4 * 2 < out.nfe <= 4 * 2 * 2
    assert out.nfe == exact.nfe and out.positions < exact.positions


def test_substeps_one_is_the_plain_moment_sampler():
    model = tiny(2)
    x, am = canvas([4, 6], 12)
    assert torch.equal(run(model, x, am).sequences, run(model, x, am, substeps=1).sequences)


@pytest.mark.parametrize("kw,msg", [
    (dict(substeps=2, sampler="maskgit"), "moment"),
    (dict(sampler="moment", partial_cache=True), "substeps"),
    (dict(sampler="moment", substeps=0), "substeps"),
    (dict(sampler="moment", substeps=2, partial_cache=True, cache="dual", block_length=4), "cache"),
    (dict(sampler="moment", substeps=2, partial_cache=True, cfg_scale=1.0, cfg_batch=False), "guidance_batch"),
])
def test_bad_configs(kw, msg):
    with pytest.raises(ValueError, match=msg):
        SamplerConfig(**kw)


def test_partial_cache_needs_the_model():
    x, am = canvas([4], 8)
    model = tiny(1)
    with pytest.raises(ValueError, match="partial_cache"):
        generate(lambda ids, a=None: model(input_ids=ids, attention_mask=a).logits, x, mask_id=MASK,
                 config=SamplerConfig(steps=2, sampler="moment", substeps=2, partial_cache=True), attention_mask=am,
                 generator=torch.Generator().manual_seed(0))
