"""Issue #17 §3: exact self-speculative decoding (``verify=True``) — bit-identical to greedy one-token-per-step
decoding (several seeds, prompt lengths, block lengths, draft rules, ragged batches with padding, the EOS policy),
with fewer forwards; the batched verification rows are counted apart. Also its fixed-shape steps (``cuda_graphs``;
the CUDA-graph replay of them is tested on a GPU in test_cuda_graphs.py)."""

from __future__ import annotations

import pytest
import torch

from mdlm.sampling import MDLMGenerationConfig, generate

from test_policies_adaptive import EndsAt
from test_sampling import EOS, MASK, Recorder, ToyLM, make_canvas, rand_prompts
from test_sampling_ragged import ROWS, batch_canvas
from test_sampling_ragged import EOS as R_EOS, MASK as R_MASK
from test_sampling_ragged import model as ragged_model  # noqa: F401 - the module fixture

pytestmark = pytest.mark.usefixtures("one_thread")

DRAFTS = {"top_n": dict(unmasking="confidence", verify_draft=6), "threshold": dict(unmasking="fast_dllm", threshold=0.3),
          "factor": dict(unmasking="fast_dllm", factor=2.0), "eb": dict(unmasking="eb", eb_gamma=1.0)}


def greedy_one_per_step(model, canvas, G: int, block_length: int | None, **kw):
    cfg = MDLMGenerationConfig(steps=G, block_length=block_length, schedule="even", temperature=0.0)
    return generate(model, canvas, mask_id=kw.pop("mask_id", MASK), config=cfg, **kw)


def verified(model, canvas, block_length: int | None, draft: dict, fixed: bool = False, **kw):
    """``fixed``: cuda_graphs=True — fixed-shape steps (verify_draft canvases each); graphs only on a GPU."""
    cfg = MDLMGenerationConfig(temperature=0.0, block_length=block_length, verify=True, cuda_graphs=fixed, **draft)
    return generate(model, canvas, mask_id=kw.pop("mask_id", MASK), config=cfg, **kw)


@pytest.mark.parametrize("fixed", [False, True], ids=["dynamic", "fixed_shape"])
@pytest.mark.parametrize("draft", sorted(DRAFTS))
@pytest.mark.parametrize("seed,P,G,bl,scale", [(0, 3, 16, None, 2.0), (1, 6, 24, 8, 4.0), (2, 1, 20, 5, 8.0),
                                               (3, 9, 12, 12, 1.0)])
def test_verified_decoding_is_bit_identical_to_greedy_one_token_per_step(draft, seed, P, G, bl, scale, fixed):
    model = ToyLM(seed=seed, scale=scale)
    canvas = make_canvas(rand_prompts(3, P, seed=seed), G)
    ref = greedy_one_per_step(model, canvas, G, bl, eos_id=EOS)
    out = verified(model, canvas, bl, DRAFTS[draft], fixed=fixed, eos_id=EOS)
    assert torch.equal(out.sequences, ref.sequences)
    blocks = -(-G // (bl or G))
    assert out.nfe <= ref.nfe and out.verify_rows >= out.nfe - blocks  # every forward after a block's first verifies
    if fixed:  # every step after a block's first forward runs min(verify_draft, block width) canvases
        K = min(DRAFTS[draft].get("verify_draft", 8), bl or G)
        assert out.verify_rows % K == 0 and K * (out.nfe - blocks) <= out.verify_rows < K * out.nfe
        assert out.graph_replays == 0  # no graphs on the CPU


@pytest.mark.parametrize("rows,bl", [(ROWS, None), ([(5, 16), (2, 8), (0, 20), (3, 4)], 4)])
@pytest.mark.parametrize("draft,fixed", [("top_n", False), ("eb", False), ("top_n", True)])
def test_a_ragged_padded_batch_verifies_to_its_greedy_output(ragged_model, draft, fixed, rows, bl):  # noqa: F811
    x, am = batch_canvas(rows)
    G = max(g for _, g in rows)  # every block gets one step per position: one token per step
    kw = dict(mask_id=R_MASK, eos_id=R_EOS, attention_mask=am)
    ref = greedy_one_per_step(ragged_model, x, G, bl, **kw)
    out = verified(ragged_model, x, bl, DRAFTS[draft], fixed=fixed, **kw)
    assert torch.equal(out.sequences, ref.sequences)
    assert torch.equal(out.sequences[am == 0], x[am == 0])  # padding untouched


def test_every_position_is_filled_when_the_step_budget_is_split_unevenly(ragged_model):  # noqa: F811
    x, am = batch_canvas(ROWS)  # 16 positions in blocks of 6: the even split gives a block fewer steps than tokens
    out = verified(ragged_model, x, 6, DRAFTS["top_n"], mask_id=R_MASK, attention_mask=am)
    assert not (out.sequences == R_MASK).any()


@pytest.mark.parametrize("fixed", [False, True], ids=["dynamic", "fixed_shape"])
def test_the_eos_policy_is_verified_too(fixed):
    P, G = 4, 24
    canvas = make_canvas(rand_prompts(2, P), G)
    ref = greedy_one_per_step(EndsAt(P + 9), canvas, G, 8, eos_id=EOS)
    out = verified(EndsAt(P + 9), canvas, 8, DRAFTS["top_n"], fixed=fixed, eos_id=EOS)
    assert torch.equal(out.sequences, ref.sequences) and (out.sequences == EOS).any()


def test_verification_saves_forwards_on_a_confident_model_and_counts_its_rows():
    model = ToyLM(seed=0, scale=100.0)  # confident: greedy's next choices mostly follow the draft's order
    canvas = make_canvas(rand_prompts(1, 5), 32)
    ref = greedy_one_per_step(model, canvas, 32, 16)
    calls = model.calls
    out = verified(model, canvas, 16, dict(unmasking="confidence", verify_draft=8))
    assert torch.equal(out.sequences, ref.sequences)
    assert ref.nfe == 32 and out.nfe <= 8  # measured 7
    assert model.calls - calls == out.nfe  # nfe counts forwards …
    assert out.verify_rows > out.nfe  # … and verify_rows the draft canvases they ran


def test_callbacks_see_every_verified_step_commit_at_least_one_token_per_unfinished_row():
    model = ToyLM(seed=4, scale=3.0)
    rec = Recorder()
    P, bl = 3, 8
    out = verified(model, make_canvas(rand_prompts(2, P), 16), bl, {**DRAFTS["top_n"], "return_history": True},
                   callback=rec)
    assert len(rec.infos) == out.steps
    for s, info in enumerate(rec.infos):
        lo = P + info.block * bl
        unfinished = (out.history[s][:, lo:lo + bl] == MASK).any(dim=1)
        assert (info.committed.sum(dim=1)[unfinished] >= 1).all()
        assert not info.committed[:, :lo].any() and not info.committed[:, lo + bl:].any()
    assert int(sum(c.sum() for c in rec.committed)) == 2 * 16


def test_verify_refuses_a_model_that_decodes_with_a_kv_cache():
    from mdlm.modeling import MDLMConfig, MDLMForMaskedLM

    cfg = MDLMConfig(vocab_size=24, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                     max_position_embeddings=32, mask_token_id=MASK, block_size=4)
    bd3 = MDLMForMaskedLM(cfg).eval()  # block diffusion: decodes with the exact block cache
    with pytest.raises(ValueError, match="verify runs full forwards"):
        verified(bd3, make_canvas(rand_prompts(1, 4), 8), None, DRAFTS["top_n"])


@pytest.mark.parametrize("fixed", [False, True], ids=["dynamic", "fixed_shape"])
def test_one_draft_per_step_costs_exactly_greedys_forwards(fixed):
    """verify_draft=1: each step commits greedy's choice and its verification forward gives the next step's logits,
    so a block costs one forward per token — the last step of a block, with nothing left to verify, runs none."""
    model = ToyLM(seed=5, scale=2.0)
    canvas = make_canvas(rand_prompts(2, 4), 24)
    ref = greedy_one_per_step(model, canvas, 24, 8)
    out = verified(model, canvas, 8, dict(unmasking="confidence", verify_draft=1), fixed=fixed)
    assert torch.equal(out.sequences, ref.sequences)
    assert out.nfe == ref.nfe == 24 and out.verify_rows == 24 - 3  # 3 blocks: their first forwards verify nothing
