"""The block window read from device tensors (ModelRunner.use_fixed_window, what lets one CUDA graph serve every
block): the same logits as Python slices for the uncached and the dual-cached runner, in every block, with the
dual cache refilled in its own storage; refused where a step's width changes with the block (prefix cache, partial
cache). The GPU side (graphs captured once per kind of step) is in tests/test_cuda_graphs.py."""

from __future__ import annotations

import pytest
import torch

from mdlm.modeling.kv_cache import BlockKVCache
from mdlm.sampling.runner import ModelRunner

from test_kv_cache import MASK, ragged_canvas, tiny

pytestmark = pytest.mark.usefixtures("one_thread")

P, G, W = 7, 24, 8  # the longest prompt, generated columns, block width


def runners(cache: str):
    model = tiny()
    x, am = ragged_canvas([7, 4, 6], G)
    cond = (x != MASK) & am.bool()
    sliced = ModelRunner(model, am, cond, MASK, cache=cache)
    fixed = ModelRunner(model, am, cond, MASK, cache=cache)
    assert fixed.use_fixed_window(x.device)
    return x, sliced, fixed


def commit_some(x: torch.Tensor, lo: int, hi: int, step: int) -> None:
    """Write tokens into two masked columns of the block (what a sampler step does)."""
    x[:, lo + 2 * step: lo + 2 * step + 2] = 3 + step


@pytest.mark.parametrize("cache", ["none", "dual"])
def test_a_fixed_window_gives_the_sliced_logits_in_every_block(cache):
    x, sliced, fixed = runners(cache)
    storage = None
    for lo in range(P, P + G, W):
        hi = lo + W
        sliced.start_block()
        fixed.start_block()
        fixed.set_window(lo, hi)
        for step in range(3):  # the block's first call (a dual cache's refill), then two later steps
            a, _ = sliced.window(x, False, lo, hi)
            b, _ = fixed.window(x, False, lo, hi)
            assert b.shape == (3, W, a.shape[-1])
            torch.testing.assert_close(b, a, rtol=0, atol=1e-12)
            commit_some(x, lo, hi, step)
            sliced.invalidate()
            fixed.invalidate()
        if cache == "dual":  # the refill writes into the first fill's tensors (what a captured step reads)
            ptrs = [k.data_ptr() for k in fixed.blocks[0].cache.keys]
            assert storage is None or ptrs == storage
            storage = ptrs
    assert (sliced.nfe, sliced.positions) == (fixed.nfe, fixed.positions)
    # the fixed runner read its window from the tensors: the flat LM-head indices, the dual step's fresh columns
    assert fixed.fixed._flat or fixed.blocks[0].cache.fresh_columns is fixed.fixed.cols
    assert sliced.fixed is None and (not sliced.blocks or sliced.blocks[0].cache.fresh_columns is None)


def test_a_fixed_window_is_refused_where_the_step_width_changes():
    model = tiny()
    x, am = ragged_canvas([7, 4], G)
    cond = (x != MASK) & am.bool()
    assert not ModelRunner(model, am, cond, MASK, cache="prefix").use_fixed_window(x.device)
    assert not ModelRunner(model, am, cond, MASK, partial=True).use_fixed_window(x.device)
    assert not ModelRunner(lambda z: torch.zeros(*z.shape, 96), am, cond, MASK).use_fixed_window(x.device)


def test_a_refill_with_another_shape_is_one_clear_error():
    cache = BlockKVCache()
    k = torch.zeros(2, 2, 10, 4)
    cache.update(0, k, k)
    with pytest.raises(ValueError, match="refilling a cache"):
        cache.update(0, torch.zeros(2, 2, 12, 4), torch.zeros(2, 2, 12, 4))


@pytest.mark.parametrize("cache, steps", [("none", G), ("dual", G), ("dual", G // W)])
def test_a_failed_capture_falls_back_to_the_eager_samples(cache, steps, monkeypatch):
    """The capture bookkeeping on the CPU: with CUDA graphs "possible" and every capture failing (what capture
    returns after its warning), a generation decodes eagerly — the same tokens, forwards and columns as without
    graphs — also when the failed capture is a dual cache's block refill (one step per block: the first capture is
    block 1's refill). The patched capture fails before running the step's Python; a real failed capture has run it
    (recording, not executing, its kernels), and ``GreedyStep.replay`` restores the runner's block span for that
    case — that part needs a GPU to fail for real and is not checked here."""
    import mdlm.sampling.graphs as graphs
    import mdlm.sampling.greedy as greedy
    from mdlm.sampling import SamplerConfig, generate

    model = tiny()
    x, am = ragged_canvas([7, 4, 6], G)
    cfg = dict(steps=steps, block_length=W, schedule="even", temperature=0.0, cache=cache, stop_at_eos=False)
    plain = generate(model, x, mask_id=MASK, config=SamplerConfig(**cfg), attention_mask=am)
    monkeypatch.setattr(greedy, "_graphs_possible", lambda canvas: True)
    captures = []
    monkeypatch.setattr(graphs, "capture", lambda body: captures.append(1))  # None: a failed capture
    failed = generate(model, x, mask_id=MASK, config=SamplerConfig(cuda_graphs=True, **cfg), attention_mask=am)
    assert captures == [1] and failed.graph_capture_failures == 1 and failed.graph_replays == 0
    assert torch.equal(failed.sequences, plain.sequences)
    assert (failed.nfe, failed.positions) == (plain.nfe, plain.positions)
