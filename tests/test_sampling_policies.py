"""Unmasking policies as small objects: Fast-dLLM's threshold rule (a policy added on top of the split loop)."""

from __future__ import annotations

import pytest
import torch

from mdlm.sampling import MDLMGenerationConfig, generate
from mdlm.sampling.policies import FastDLLMPolicy, make_policy

from test_sampling import MASK, Recorder, ToyLM, make_canvas, rand_prompts

pytestmark = pytest.mark.usefixtures("one_thread")


def fast_dllm_reference(model, prompt: torch.Tensor, gen_length: int, block_length: int, threshold: float):
    """Our own plain re-implementation of Fast-dLLM's parallel decoding rule (Wu et al. 2025), greedy: in each
    block, until it is filled, commit the most confident masked position of the block and every other one whose
    probability ≥ threshold. Returns (canvas, number of model calls)."""
    B, P = prompt.shape
    x = torch.full((B, P + gen_length), MASK, dtype=torch.long)
    x[:, :P] = prompt
    calls = 0
    for start in range(P, P + gen_length, block_length):
        end = start + block_length
        while (x[:, start:end] == MASK).any():
            logits = model(x)
            calls += 1
            logits[..., MASK] = float("-inf")
            x0 = logits.argmax(dim=-1)
            p = torch.softmax(logits.double(), dim=-1).gather(-1, x0.unsqueeze(-1)).squeeze(-1)  # (B, L)
            for j in range(B):
                cand = [c for c in range(start, end) if x[j, c] == MASK]
                if not cand:
                    continue
                best = max(cand, key=lambda c: (float(p[j, c]), -c))
                for c in cand:
                    if c == best or float(p[j, c]) >= threshold:
                        x[j, c] = x0[j, c]
    return x, calls


def config(**kw) -> MDLMGenerationConfig:
    return MDLMGenerationConfig(unmasking="fast_dllm", schedule="even", temperature=0.0, **kw)


@pytest.mark.parametrize("gen_length,block_length,threshold,scale", [(24, 8, 0.9, 6.0), (16, 16, 0.5, 3.0),
                                                                     (24, 6, 0.3, 1.0), (16, 8, 1.0, 6.0)])
def test_fast_dllm_rule_matches_a_plain_reference(gen_length, block_length, threshold, scale):
    model = ToyLM(seed=4, scale=scale)
    prompt = rand_prompts(3, 5)
    want, calls = fast_dllm_reference(model, prompt, gen_length, block_length, threshold)
    out = generate(model, make_canvas(prompt, gen_length), mask_id=MASK,
                   config=config(steps=gen_length, block_length=block_length, threshold=threshold))
    assert torch.equal(out.sequences, want)
    assert out.nfe == out.steps == calls


def test_fast_dllm_commits_at_least_one_per_step_and_never_outside_the_block():
    model = ToyLM(seed=2, scale=2.0)
    P, G, bl = 4, 24, 8
    rec = Recorder()
    out = generate(model, make_canvas(rand_prompts(2, P), G), mask_id=MASK, callback=rec,
                   config=config(steps=G, block_length=bl, threshold=0.6, return_history=True))
    assert not (out.sequences == MASK).any()
    for s, info in enumerate(rec.infos):
        start, end = P + info.block * bl, P + (info.block + 1) * bl
        committed = info.committed
        assert not committed[:, :start].any() and not committed[:, end:].any()  # only the current block
        left = (out.history[s][:, start:end] == MASK).any(dim=1)  # rows with masked positions before the step
        assert (committed.sum(dim=1)[left] >= 1).all()


def test_fast_dllm_steps_are_a_cap():
    model = ToyLM(seed=2, scale=0.5)  # unconfident: the threshold admits little, the cap decides
    canvas = make_canvas(rand_prompts(2, 3), 16)
    out = generate(model, canvas, mask_id=MASK, config=config(steps=4, block_length=8, threshold=0.99))
    assert out.steps <= 4 and not (out.sequences == MASK).any()  # each block's last allowed step fills it
    free = generate(model, canvas, mask_id=MASK, config=config(steps=16, block_length=8, threshold=0.99))
    assert free.steps > 4


def test_policies_are_built_from_the_config_and_need_their_settings():
    assert isinstance(make_policy(config(threshold=0.9)), FastDLLMPolicy)
    with pytest.raises(ValueError, match="needs a threshold"):
        MDLMGenerationConfig(unmasking="fast_dllm")
    with pytest.raises(ValueError, match="moment_alpha applies to unmasking='moment' only"):
        MDLMGenerationConfig(moment_alpha=1.0)
