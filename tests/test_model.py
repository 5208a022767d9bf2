"""The bidirectional transformer: HF round-trips, padding, attention backends, peft names, backbones."""

import pytest
import torch
from transformers import AutoConfig, AutoModelForMaskedLM

import mdlm  # noqa: F401  (registers the Auto classes)
from mdlm.modeling import MDLMConfig, MDLMForMaskedLM


def tiny(**kw) -> MDLMForMaskedLM:
    torch.manual_seed(0)
    cfg = dict(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
               num_key_value_heads=2, max_position_embeddings=32, mask_token_id=63, pad_token_id=62)
    cfg.update(kw)
    return MDLMForMaskedLM(MDLMConfig(**cfg)).eval()


def test_save_load_gives_identical_logits(tmp_path):
    m = tiny()
    x = torch.randint(0, 60, (3, 20))
    m.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists()
    m2 = AutoModelForMaskedLM.from_pretrained(tmp_path).eval()
    assert isinstance(m2, MDLMForMaskedLM)
    with torch.no_grad():
        assert torch.equal(m(x).logits, m2(x).logits)
    assert m2.config.mask_token_id == 63


def test_attention_is_bidirectional():
    m = tiny()
    x = torch.randint(0, 60, (1, 12))
    y = x.clone()
    y[0, -1] = (y[0, -1] + 1) % 60  # change the LAST token
    with torch.no_grad():
        a, b = m(x).logits, m(y).logits
    assert not torch.allclose(a[0, 0], b[0, 0])  # the first position sees it


@pytest.mark.parametrize("side", ["right", "left"])
def test_padded_batch_equals_one_by_one(side):
    m = tiny()
    lens = [20, 13, 7]
    seqs = [torch.randint(0, 60, (n,)) for n in lens]
    L = max(lens)
    ids = torch.full((3, L), 62)
    am = torch.zeros(3, L, dtype=torch.long)
    for i, s in enumerate(seqs):
        if side == "right":
            ids[i, : len(s)] = s
            am[i, : len(s)] = 1
        else:
            ids[i, L - len(s):] = s
            am[i, L - len(s):] = 1
    with torch.no_grad():
        batch = m(ids, attention_mask=am).logits
        for i, s in enumerate(seqs):
            one = m(s[None]).logits[0]
            got = batch[i, : len(s)] if side == "right" else batch[i, L - len(s):]
            torch.testing.assert_close(got, one, atol=1e-5, rtol=1e-4)


def test_eager_and_sdpa_agree():
    m = tiny()
    x = torch.randint(0, 60, (2, 16))
    am = torch.ones(2, 16, dtype=torch.long)
    am[1, 10:] = 0
    with torch.no_grad():
        a = m(x, attention_mask=am).logits
        m.config._attn_implementation = "eager"
        b = m(x, attention_mask=am).logits
    torch.testing.assert_close(a[0], b[0], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(a[1, :10], b[1, :10], atol=1e-5, rtol=1e-4)


def test_logits_positions_match_full_logits():
    m = tiny()
    x = torch.randint(0, 60, (2, 16))
    sel = torch.rand(2, 16) < 0.5
    with torch.no_grad():
        full = m(x).logits
        torch.testing.assert_close(m(x, logits_positions=sel).logits, full[sel])
        torch.testing.assert_close(m(x, logits_positions=slice(5, 9)).logits, full[:, 5:9])


def test_rope_tables_are_rebuilt_on_load_not_saved(tmp_path):
    from safetensors import safe_open

    from mdlm.modeling.modeling import rope_cos_sin

    m = tiny(max_position_embeddings=40)
    m.save_pretrained(tmp_path)
    with safe_open(str(tmp_path / "model.safetensors"), "pt") as f:
        assert not [k for k in f.keys() if "rope" in k]
    m2 = AutoModelForMaskedLM.from_pretrained(tmp_path)
    cos, sin = rope_cos_sin(torch.arange(40)[None], m2.config.head_dim, m2.config.rope_theta, torch.float32)
    assert torch.equal(m2.model.rope_cos, cos[0, 0])
    half = m2.config.head_dim // 2
    assert torch.equal(m2.model.rope_sin_signed, torch.cat([-sin[0, 0, :, :half], sin[0, 0, :, half:]], dim=-1))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_the_rolled_rope_is_the_rotate_half_rope_bit_for_bit(dtype):
    """The model's RoPE (roll + a signed sin table, 4 kernels) equals the textbook rotate-half form exactly."""
    from mdlm.modeling.modeling import apply_rope, apply_rope_rolled, rope_cos_sin, signed_sin

    x = torch.randn(2, 3, 7, 16, generator=torch.Generator().manual_seed(0)).to(dtype)
    cos, sin = rope_cos_sin(torch.arange(3, 10).expand(2, 7), 16, 10000.0, dtype)
    assert torch.equal(apply_rope_rolled(x, cos, signed_sin(sin)), apply_rope(x, cos, sin))


def test_gradient_checkpointing_gives_same_gradients():
    x = torch.randint(0, 60, (2, 16))
    grads = []
    for ckpt in (False, True):
        m = tiny().train()
        if ckpt:
            getattr(m, "activation_checkpointing_enable", m.gradient_checkpointing_enable)()  # the transformers 5 name
            assert all(layer.gradient_checkpointing for layer in m.model.layers)
        m(x).logits.float().pow(2).mean().backward()
        grads.append(m.model.layers[0].mlp.up_proj.weight.grad.clone())
    torch.testing.assert_close(grads[0], grads[1])


def test_peft_finds_the_linear_layers():
    from peft import LoraConfig, get_peft_model

    m = tiny()
    names = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    pm = get_peft_model(m, LoraConfig(r=4, target_modules=names))
    lora = [n for n, _ in pm.named_parameters() if "lora_A" in n]
    assert len(lora) == 7 * 2  # 7 linears × 2 layers


def test_bad_config_is_rejected():
    with pytest.raises(ValueError, match="outside the vocabulary"):
        MDLMConfig(vocab_size=10, mask_token_id=10, hidden_size=8, num_attention_heads=2)
    m = tiny()
    with pytest.raises(ValueError, match="max_position_embeddings"):
        m(torch.zeros(1, 40, dtype=torch.long))


def test_modernbert_backbone_trains_through_the_same_loss():
    """Any HF masked LM plugs in: the MDM loss on ModernBERT (from config) gives finite gradients."""
    from mdlm.loss import diffusion_loss
    from mdlm.masking import mask_tokens, sample_times
    from mdlm.schedules import get_schedule
    from mdlm.training.trainer import masked_logits

    cfg = AutoConfig.for_model("modernbert", vocab_size=64, hidden_size=32, intermediate_size=64,
                               num_hidden_layers=2, num_attention_heads=4, max_position_embeddings=32,
                               pad_token_id=62, global_attn_every_n_layers=1)
    model = AutoModelForMaskedLM.from_config(cfg)
    x = torch.randint(0, 60, (4, 16))
    g = torch.Generator().manual_seed(0)
    t = sample_times(4, generator=g)
    noisy, masked = mask_tokens(x, t, get_schedule("linear"), 63, generator=g)
    logits = masked_logits(model, noisy, torch.ones_like(x), masked)
    assert logits.shape == (int(masked.sum()), 64)
    out = diffusion_loss(logits, x, masked, t, get_schedule("linear"), eligible=torch.ones_like(masked), mask_id=63)
    out.loss.backward()
    assert torch.isfinite(out.loss)
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad and p.dim() > 1)


def test_the_op_counter_sees_every_projection_of_a_decoding_step():
    """eval/count_ops.py, the CPU proxy for a step's GPU kernels: a dual step of an n-layer model runs 7 projections
    per layer and the LM head (n·7 + 1 matrix products), and nothing of RoPE's old negate-and-concatenate form."""
    from test_image_sample_eval import load_eval_script

    from mdlm.evaluation.benchmark_models import build

    count_ops = load_eval_script("count_ops")
    layers = build("mdlm", "tiny", 64).config.num_hidden_layers
    c = count_ops.count_step("tiny", gen_length=32, block_length=8, cache="dual")
    assert c.counts["mm"] == 7 * layers + 1
    assert c.counts["roll"] == 2 * layers and "neg" not in c.counts
    assert c.total == sum(c.counts.values()) > c.counts["mm"]
