"""An adapted causal LM (``CausalBackboneForMaskedLM``) gives the sampler the logits of its block window only, as the
project's own MDM does: the same values as the full forward, and the same decoded tokens."""

from __future__ import annotations

import pytest
import torch

from mdlm.sampling import SamplerConfig, generate

from test_adapt import N_WORDS, tiny_mdm

pytestmark = pytest.mark.usefixtures("one_thread")


def _padded_batch(tok, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, N_WORDS, (3, 12), generator=g)
    am = torch.ones_like(x)
    am[0, :5] = 0  # a left-padded row
    x[0, :5] = tok.pad_token_id
    x[:, 8:] = tok.mask_token_id
    return x, am


@pytest.mark.parametrize("kind", ["llama", "gpt2"])
@pytest.mark.parametrize("alignment", ["llada", "dream"])
def test_window_logits_equal_the_full_logits_there(kind, alignment):
    """A slice of columns, flat indices b·L + l and the sampler's (B, 1, 1, L) bool key-padding mask give the full
    forward's logits at those columns (also through peft)."""
    from mdlm.lora import LoraArguments, apply_lora
    from mdlm.modeling.padding import padding_to_attention_mask

    model, tok = tiny_mdm(kind, alignment)
    assert model.supports_logits_window
    x, am = _padded_batch(tok)
    pos = (am.cumsum(1) - 1).clamp_min(0)
    flat = (torch.arange(3)[:, None] * 12 + torch.arange(6, 10)[None]).flatten()  # (12,) columns 6..9 of each row
    targets = ["c_attn"] if kind == "gpt2" else ["q_proj", "v_proj"]
    for m in (model, apply_lora(model, LoraArguments(r=4, target_modules=targets), tok).eval()):
        with torch.no_grad():
            full = m(input_ids=x, attention_mask=am, position_ids=pos).logits  # (B, L, V)
            win = m(input_ids=x, attention_mask=padding_to_attention_mask(am), position_ids=pos,
                    logits_positions=slice(6, 10)).logits  # (B, 4, V)
            idx = m(input_ids=x, attention_mask=am, position_ids=pos, logits_positions=flat).logits  # (12, V)
        torch.testing.assert_close(win, full[:, 6:10])
        torch.testing.assert_close(idx, full[:, 6:10].reshape(12, -1))


@pytest.mark.parametrize("impl", ["sdpa", "eager"])
@pytest.mark.parametrize("alignment", ["llada", "dream"])
def test_a_padded_row_gives_its_unpadded_logits_in_both_attention_forms(impl, alignment):
    """The padding mask reaches transformers as a prepared 4-D key mask (bool for SDPA, additive for eager
    attention), whether the caller passes (B, L) or the sampler's (B, 1, 1, L): a left-padded row's real tokens get
    the logits of the same row decoded alone without padding."""
    from mdlm.modeling.padding import padding_to_attention_mask

    model, tok = tiny_mdm("llama", alignment, seed=4)
    model.lm.config._attn_implementation = impl
    x, am = _padded_batch(tok, seed=2)
    with torch.no_grad():
        alone = model(input_ids=x[:1, 5:]).logits  # (1, 7, V): row 0 without its 5 padding columns
        for mask in (am, padding_to_attention_mask(am)):
            padded = model(input_ids=x, attention_mask=mask).logits
            torch.testing.assert_close(padded[0, 5:], alone[0], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("unmasking", ["confidence", "fast_dllm"])
def test_sampler_with_the_window_decodes_the_full_forwards_tokens(unmasking, monkeypatch):
    """The sampler's window path (LM head on the block only) and its full-forward path decode the same tokens with the
    same NFE, on a ragged left-padded batch."""
    import mdlm.modeling.causal_backbone as cb

    model, tok = tiny_mdm("llama", "dream", seed=5)
    x, am = _padded_batch(tok, seed=1)
    cfg = SamplerConfig(steps=4, block_length=2, temperature=0.0, unmasking=unmasking,
                        threshold=0.3 if unmasking == "fast_dllm" else None)
    with torch.no_grad():
        fast = generate(model, x.clone(), mask_id=tok.mask_token_id, attention_mask=am, config=cfg)
        monkeypatch.setattr(cb.CausalBackboneForMaskedLM, "supports_logits_window", property(lambda self: False))
        slow = generate(model, x.clone(), mask_id=tok.mask_token_id, attention_mask=am, config=cfg)
    assert torch.equal(fast.sequences, slow.sequences)
    assert fast.nfe == slow.nfe
    assert not (fast.sequences[:, 8:] == tok.mask_token_id).any()


def test_a_non_plain_head_refuses_a_window_clearly(monkeypatch):
    import mdlm.modeling.causal_backbone as cb

    model, tok = tiny_mdm("llama", "llada")
    monkeypatch.setattr(cb, "PLAIN_HEAD_MODEL_TYPES", ())
    assert not model.supports_logits_window
    with pytest.raises(ValueError, match="plain LM head"):
        model(input_ids=torch.zeros(1, 4, dtype=torch.long), logits_positions=slice(1, 3))


def test_a_full_attention_mask_is_refused_with_its_shape():
    model, tok = tiny_mdm("gpt2", "llada")
    with pytest.raises(ValueError, match=r"\(1, 1, 4, 4\)"):
        model(input_ids=torch.zeros(1, 4, dtype=torch.long), attention_mask=torch.ones(1, 1, 4, 4, dtype=torch.bool))


@pytest.mark.gpu
@pytest.mark.parametrize("padded", [False, True])
@pytest.mark.parametrize("unmasking", ["confidence", "fast_dllm"])
def test_cuda_graphs_replay_the_adapted_backbone_to_the_eager_tokens(padded, unmasking):
    """Each step of the adapted Llama captured as one CUDA graph (transformers' modeling code inside the capture)
    decodes the eager tokens, with and without padding (the sampler's key-padding mask goes to transformers as a
    prepared 4-D mask, so no mask is built — and no CPU tensor copied — during the capture)."""
    model, tok = tiny_mdm("llama", "dream", seed=5)
    model = model.cuda()
    x, am = _padded_batch(tok, seed=1)
    x, am = (x, am) if padded else (x[1:], None)
    cfg = dict(steps=4, block_length=2, temperature=0.0, unmasking=unmasking,
               threshold=0.3 if unmasking == "fast_dllm" else None)
    with torch.no_grad():
        run = [generate(model, x.cuda(), mask_id=tok.mask_token_id, attention_mask=None if am is None else am.cuda(),
                        config=SamplerConfig(cuda_graphs=g, **cfg)) for g in (False, True)]
    assert torch.equal(run[0].sequences, run[1].sequences)
    assert run[0].nfe == run[1].nfe
    assert run[1].graph_replays > 0 and run[1].graph_capture_failures == 0


def test_a_merged_adapter_gives_the_adapters_logits_without_peft(tmp_path):
    """``load_for_generation(adapter_dir, merge_adapter=True)``: the plain model (no peft layers), the same logits as
    the adapter applied on top of its base."""
    from mdlm.lora import LoraArguments, apply_lora, save_adapter, set_base_path
    from mdlm.pipelines import load_for_generation

    model, tok = tiny_mdm("llama", "dream", seed=2)
    model.save_pretrained(tmp_path / "base")
    tok.save_pretrained(tmp_path / "base")
    torch.manual_seed(1)
    peft_model = apply_lora(model, LoraArguments(r=2, dropout=0.0, target_modules=["q_proj", "v_proj"]), tok)
    for name, p in peft_model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(p, std=0.5)  # a non-zero update
    set_base_path(peft_model, str(tmp_path / "base"))
    save_adapter(peft_model, str(tmp_path / "adapter"), tok)
    x, am = _padded_batch(tok)
    got = {}
    for merge in (False, True):
        loaded = load_for_generation(str(tmp_path / "adapter"), merge_adapter=merge)
        with torch.no_grad():
            got[merge] = loaded.model(input_ids=x, attention_mask=am).logits
        assert any("lora" in n for n, _ in loaded.model.named_parameters()) != merge
    torch.testing.assert_close(got[True], got[False], rtol=1e-4, atol=1e-4)
    with torch.no_grad():  # and the adapter does change the base's logits
        base = load_for_generation(str(tmp_path / "base")).model(input_ids=x, attention_mask=am).logits
    assert not torch.allclose(got[True], base, atol=1e-3)
