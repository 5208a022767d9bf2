"""Block KV cache (Fast-dLLM dual / prefix cache): exactness, semantics, padding, counts, errors.

Tiny random MDLMForMaskedLM models on the CPU. What must hold (see mdlm/modeling/kv_cache.py):
  * a cached forward of a block against a cache filled from the SAME canvas is the full forward;
  * so one sampler step per block, or a one-layer model (whose cached K/V cannot go stale inside a
    block), decodes exactly as without the cache;
  * deeper models at later steps of a block are an approximation (cached K/V are stale);
  * prefix cache keeps the suffix in attention (recomputed), dual cache freezes it at the block start.
"""

from __future__ import annotations

import pytest
import torch

import mdlm  # noqa: F401
from mdlm.modeling import MDLMConfig, MDLMForMaskedLM
from mdlm.modeling.kv_cache import CACHE_MODES, BlockKVCache
from mdlm.sampling.cached_calls import BlockCachedLogits
from mdlm.modeling.modeling import apply_rope, rope_cos_sin
from mdlm.sampling import SamplerConfig, as_logits_fn, generate

V, MASK, PAD = 64, 63, 62


pytestmark = pytest.mark.usefixtures("one_thread")


def tiny(layers: int = 2, dtype: torch.dtype = torch.float64, impl: str = "sdpa", **kw) -> MDLMForMaskedLM:
    """A random model with peaked predictions (large init) so that tokens and confidences vary."""
    torch.manual_seed(0)
    cfg = dict(vocab_size=V, hidden_size=32, intermediate_size=64, num_hidden_layers=layers, num_attention_heads=4,
               num_key_value_heads=2, max_position_embeddings=96, mask_token_id=MASK, pad_token_id=PAD,
               initializer_range=0.3)
    cfg.update(kw)
    m = MDLMForMaskedLM(MDLMConfig(**cfg)).to(dtype).eval()
    m.config._attn_implementation = impl
    return m


def ragged_canvas(prompt_lens: list[int], gen_length: int, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-padded [pad…][prompt][MASK × gen] canvas and its attention mask, (B, P + G) each."""
    g = torch.Generator().manual_seed(seed)
    P = max(prompt_lens)
    B = len(prompt_lens)
    x = torch.full((B, P + gen_length), PAD)
    am = torch.zeros(B, P + gen_length, dtype=torch.long)
    for i, n in enumerate(prompt_lens):
        x[i, P - n:P] = torch.randint(0, 60, (n,), generator=g)
        am[i, P - n:] = 1
    x[:, P:] = MASK
    return x, am


def gen0() -> torch.Generator:
    return torch.Generator().manual_seed(0)


def run(model, canvas, am=None, **kw):
    cfg = SamplerConfig(schedule=kw.pop("schedule", "even"), temperature=kw.pop("temperature", 0.0), **kw)
    with torch.no_grad():
        return generate(model, canvas, mask_id=MASK, config=cfg, attention_mask=am, generator=gen0())


# ----------------------------------------------------------------------------- model level


@pytest.mark.parametrize("impl", ["sdpa", "eager"])
@pytest.mark.parametrize("mode", ["dual", "prefix"])
def test_cached_block_forward_equals_full_forward(mode, impl):
    m = tiny(layers=3, dtype=torch.float32, impl=impl)
    x, am = ragged_canvas([9, 4, 1], 24)  # L = 33, left padding in rows 1 and 2
    x = torch.where(x == MASK, torch.randint(0, 60, x.shape, generator=torch.Generator().manual_seed(2)), x)
    x[:, 20:26] = MASK  # a partly masked block
    pos = (am.cumsum(-1) - 1).clamp_min(0)
    with torch.no_grad():
        full = m(input_ids=x, attention_mask=am, position_ids=pos).logits  # (B, L, V)
    for lo, hi in [(9, 17), (17, 33), (32, 33)]:
        r = BlockCachedLogits(m, mode, am)
        first = r.fill(x, lo, hi)
        again = r.step(x, lo, hi)
        again2 = r.step(x, lo, hi)  # the spliced K/V of the previous step change nothing
        for got in (first, again, again2):
            assert got.shape == (3, hi - lo, V)
            torch.testing.assert_close(got, full[:, lo:hi], atol=1e-5, rtol=0)


def test_fill_returns_rotated_kv_of_every_position():
    m = tiny(layers=2, dtype=torch.float32)
    x = torch.randint(0, 60, (2, 20))
    cache = BlockKVCache()
    with torch.no_grad():
        m(input_ids=x, kv_cache=cache)
        h = m.model.layers[0].input_layernorm(m.model.embed_tokens(x))
        att = m.model.layers[0].self_attn
        k = att.k_proj(h).view(2, 20, 2, 8).transpose(1, 2)  # (B, Hkv, L, D)
        cos, sin = rope_cos_sin(torch.arange(20).expand(2, 20), 8, m.config.rope_theta, torch.float32)
        k = apply_rope(k, cos, sin)
    assert len(cache.keys) == len(cache.values) == 2 and cache.length == 20
    assert cache.keys[1].shape == cache.values[1].shape == (2, 2, 20, 8)  # GQA: Hkv heads, not H
    torch.testing.assert_close(cache.keys[0], k)


def test_default_forward_unchanged_by_the_hook():
    m = tiny(layers=2, dtype=torch.float32)
    x = torch.randint(0, 60, (2, 16))
    with torch.no_grad():
        a = m(x).logits
        b = m(input_ids=x, kv_cache=BlockKVCache()).logits
    assert torch.equal(a, b)


def test_dual_freezes_the_suffix_prefix_recomputes_it():
    """One layer, so the only difference between modes is which columns are cached."""
    m = tiny(layers=1)
    x, _ = ragged_canvas([8], 24)
    x[:, 8:] = torch.randint(0, 60, (1, 24), generator=torch.Generator().manual_seed(3))
    lo, hi = 16, 24
    y = x.clone()
    y[:, 18] = (y[:, 18] + 1) % 60  # change inside the block
    y[:, 28] = (y[:, 28] + 1) % 60  # and in the suffix
    y_old_suffix = y.clone()
    y_old_suffix[:, hi:] = x[:, hi:]
    with torch.no_grad():
        full_y = m(y).logits[:, lo:hi]
        full_mix = m(y_old_suffix).logits[:, lo:hi]
        dropped = m(y[:, :hi]).logits[:, lo:hi]  # what "prefix cache that drops the suffix" would give
        dual, prefix = BlockCachedLogits(m, "dual", None), BlockCachedLogits(m, "prefix", None)
        dual.fill(x, lo, hi)
        prefix.fill(x, lo, hi)
        d, p = dual.step(y, lo, hi), prefix.step(y, lo, hi)
    torch.testing.assert_close(d, full_mix, atol=1e-10, rtol=0)  # suffix K/V from the block start
    torch.testing.assert_close(p, full_y, atol=1e-10, rtol=0)  # suffix recomputed, still attended
    assert not torch.allclose(d, full_y) and not torch.allclose(p, dropped)


def test_deeper_model_later_steps_are_approximate():
    """Layer ≥ 2 K/V of cached columns do not see tokens committed in the block after its start."""
    m = tiny(layers=2)
    x, _ = ragged_canvas([8], 24)
    lo, hi = 8, 16
    y = x.clone()
    y[:, 8:12] = torch.tensor([5, 6, 7, 8])  # tokens committed by earlier steps of the block
    with torch.no_grad():
        exact = m(y).logits[:, lo:hi]
        for mode in ("dual", "prefix"):
            r = BlockCachedLogits(m, mode, None)
            r.fill(x, lo, hi)
            assert not torch.allclose(r.step(y, lo, hi), exact, atol=1e-6)


def test_causal_models_and_plain_functions_are_rejected():
    with pytest.raises(ValueError, match="bidirectional"):
        BlockCachedLogits(tiny(is_causal=True), "dual", None)
    with pytest.raises(TypeError, match="supports_block_kv_cache"):
        BlockCachedLogits(lambda x: x, "dual", None)
    with pytest.raises(ValueError, match="'dual' or 'prefix'"):
        BlockCachedLogits(tiny(), "none", None)
    with pytest.raises(RuntimeError, match="before fill"):
        BlockCachedLogits(tiny(), "dual", None).step(torch.zeros(1, 8, dtype=torch.long), 0, 4)


# ----------------------------------------------------------------------------- sampler level


@pytest.mark.parametrize("mode", ["dual", "prefix"])
@pytest.mark.parametrize("block_length,steps", [(8, 3), (1, 24), (6, 4)])
def test_one_step_per_block_is_exact(mode, block_length, steps):
    """Every step is a block start (a full forward), so any depth gives the uncached result."""
    m = tiny(layers=2)
    x, am = ragged_canvas([8, 5], 24)
    ref = run(m, x, am, steps=steps, block_length=block_length)
    out = run(m, x, am, steps=steps, block_length=block_length, cache=mode)
    assert torch.equal(out.sequences, ref.sequences)
    assert out.nfe == ref.nfe == steps and out.positions == ref.positions == steps * x.shape[1]


@pytest.mark.parametrize("mode", ["dual", "prefix"])
@pytest.mark.parametrize("extra", [
    dict(),  # LLaDA: one token per step, low-confidence, greedy
    dict(steps=12, threshold=0.5),  # Fast-dLLM parallel decoding
    dict(steps=12, temperature=0.8, top_k=10, schedule="cosine"),
    dict(steps=12, remasking="random"),
    dict(steps=12, confidence="margin", remask_committed=0.3),
    dict(steps=12, cfg_scale=1.5),
    dict(steps=12, cfg_scale=1.5, cfg_batch=False, cfg_interval=(0.0, 0.5)),
    dict(steps=12, sampler="moment", choice_temperature=1.0, temperature=1.0, schedule="cosine"),
])
def test_one_layer_model_is_exact_at_every_step(mode, extra):
    """Layer-1 K/V of a column depend on its own token only, and the cached columns do not change
    inside a block, so a one-layer model decodes exactly as without the cache."""
    m = tiny(layers=1)
    x, am = ragged_canvas([8, 5, 3], 24)
    kw = dict(steps=24, block_length=8)
    kw.update(extra)
    ref = run(m, x, am, **kw)
    out = run(m, x, am, cache=mode, **kw)
    assert torch.equal(out.sequences, ref.sequences)
    assert not (out.sequences == MASK).any()
    if "cfg_interval" in kw:  # the unconditional cache is refilled at every block start, guided or not
        assert out.nfe >= ref.nfe
    else:
        assert out.nfe == ref.nfe
    assert out.positions < ref.positions


@pytest.mark.parametrize("mode", ["dual", "prefix"])
@pytest.mark.parametrize("threshold", [None, 0.5])
def test_ragged_left_padded_batch_equals_one_by_one(mode, threshold):
    m = tiny(layers=2)
    lens, G = [9, 4, 6], 24
    x, am = ragged_canvas(lens, G)
    kw = dict(steps=12, block_length=8, cache=mode, threshold=threshold)
    batch = run(m, x, am, **kw).sequences
    P = max(lens)
    for i, n in enumerate(lens):
        one = run(m, x[i:i + 1, P - n:], **kw).sequences  # the row alone, unpadded
        assert torch.equal(batch[i, P - n:], one[0])
        assert torch.equal(batch[i, :P - n], x[i, :P - n])  # padding untouched


def test_nfe_and_positions_are_counted():
    m = tiny(layers=2)
    x, _ = ragged_canvas([8], 24)  # L = 32, 3 blocks of 8 → block starts lo = 8, 16, 24
    L, W = 32, 8
    plain = run(m, x, steps=24, block_length=W)
    dual = run(m, x, steps=24, block_length=W, cache="dual")
    prefix = run(m, x, steps=24, block_length=W, cache="prefix")
    assert plain.nfe == dual.nfe == prefix.nfe == 24
    assert plain.positions == 24 * L
    assert dual.positions == 3 * L + 21 * W  # 3 full forwards, 7 block-only steps per block
    assert prefix.positions == 3 * L + 7 * ((L - 8) + (L - 16) + (L - 24))
    guided = run(m, x, steps=24, block_length=W, cache="dual", cfg_scale=1.0)
    assert guided.nfe == 48 and guided.positions == 2 * dual.positions
    thr = run(m, x, steps=24, block_length=W, cache="dual", threshold=0.3)
    assert not (thr.sequences == MASK).any() and thr.nfe == thr.steps < 24
    assert thr.positions == 3 * L + (thr.nfe - 3) * W


def test_stop_at_eos_with_cache_fills_every_position():
    m = tiny(layers=2)
    x, am = ragged_canvas([8, 3], 24)
    cfg = SamplerConfig(steps=24, block_length=8, schedule="even", temperature=0.0, cache="dual")
    with torch.no_grad():
        out = generate(m, x, mask_id=MASK, config=cfg, attention_mask=am, eos_id=5, generator=gen0())
    assert not (out.sequences[am.bool()] == MASK).any()


def test_invalid_cache_settings_raise_clear_errors():
    with pytest.raises(ValueError, match="unknown cache_implementation 'full'; valid: none, prefix, dual"):
        SamplerConfig(cache="full", block_length=8)
    assert CACHE_MODES == ("none", "prefix", "dual")
    assert SamplerConfig(cache="DUAL", block_length=8).cache_implementation == "dual"
    with pytest.raises(ValueError, match="set block_length"):
        SamplerConfig(cache="dual")
    m = tiny(layers=1)
    x, _ = ragged_canvas([4], 16)
    one_block = run(m, x, steps=16, block_length=16, cache="dual")  # one block: only the prompt's K/V are reused
    assert one_block.positions < 16 * x.shape[1] and not (one_block.sequences == MASK).any()
    with pytest.raises(ValueError, match="supports_block_kv_cache"):
        run(as_logits_fn(m), x, steps=16, block_length=8, cache="prefix")
    with pytest.raises(ValueError, match="supports_block_kv_cache"):
        run(lambda t: torch.zeros(*t.shape, V), x, steps=16, block_length=8, cache="dual")
