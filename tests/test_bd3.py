"""Block diffusion (BD3-LM, issue #17 item 1): the block-causal mask, the per-block ELBO, training on real text,
the checkpoint round trip, and decoding with the exact K/V cache of finished blocks (== the uncached block-causal
forward, == uncached block-by-block decoding, a padded batch == its rows one by one)."""

from __future__ import annotations

import io
import json
import math
from contextlib import redirect_stdout

import pytest
import torch

from mdlm.modeling import MDLMConfig, MDLMForMaskedLM
from mdlm.modeling.block_diffusion import (
    bd3_logits,
    block_causal_mask,
    decode_block_mask,
)
from mdlm.modeling.padding import default_position_ids
from mdlm.sampling import MDLMGenerationConfig, generate
from mdlm.sampling.cached_calls import BlockExactLogits
from mdlm.schedules import get_schedule
from mdlm.training.bd3 import bd3_elbo_nll, bd3_loss, bd3_noise

V, MASK, PAD, EOS = 64, 63, 62, 61
BS = 4

pytestmark = pytest.mark.usefixtures("one_thread")


def tiny(block_size: int | None = BS, dtype=torch.float64, seed: int = 0) -> MDLMForMaskedLM:
    torch.manual_seed(seed)
    cfg = MDLMConfig(vocab_size=V, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                     num_key_value_heads=2, max_position_embeddings=64, mask_token_id=MASK, pad_token_id=PAD,
                     eos_token_id=EOS, initializer_range=0.3, block_size=block_size)
    return MDLMForMaskedLM(cfg).to(dtype).eval()


@pytest.fixture(scope="module")
def model():
    return tiny()


# ---------------------------------------------------------------------------------------------- the mask
@pytest.mark.parametrize("L,bs", [(12, 4), (12, 3), (8, 8), (6, 1)])
def test_block_causal_mask_is_bd3s(L, bs):
    m = block_causal_mask(L, bs)
    assert m.shape == (2 * L, 2 * L) and m.dtype == torch.bool
    for i in range(2 * L):
        for j in range(2 * L):
            qi, kj = i % L, j % L
            if i < L:  # x_t query: its own x_t block, and clean blocks strictly before
                want = (kj // bs == qi // bs) if j < L else (kj // bs < qi // bs)
            else:  # x_0 query: clean blocks up to its own, never x_t
                want = j >= L and kj // bs <= qi // bs
            assert bool(m[i, j]) == want, (i, j)
    with pytest.raises(ValueError, match="does not divide"):
        block_causal_mask(10, 4)


def test_noisy_block_depends_only_on_itself_and_the_clean_prefix(model):
    """Changing x_t outside block b, or x_0 at or after block b, leaves block b's logits unchanged."""
    g = torch.Generator().manual_seed(1)
    x0 = torch.randint(0, 60, (2, 12), generator=g)
    xt = x0.masked_fill(torch.rand(2, 12, generator=g) < 0.5, MASK)
    base = bd3_logits(model, xt, x0, None, BS)  # (B, L, V)
    xt2, x02 = xt.clone(), x0.clone()
    xt2[:, 8:] = MASK  # other noisy blocks
    xt2[:, :4] = 5
    x02[:, 4:] = 7  # clean copy of block 1 and after
    out = bd3_logits(model, xt2, x02, None, BS)
    assert torch.allclose(out[:, 4:8], base[:, 4:8], atol=1e-12)
    x03 = x0.clone()
    x03[:, 0] = (x0[:, 0] + 1) % 60  # the clean prefix matters
    assert not torch.allclose(bd3_logits(model, xt, x03, None, BS)[:, 4:8], base[:, 4:8])


def test_training_forward_honours_padding_and_a_plain_forward_is_block_causal(model):
    g = torch.Generator().manual_seed(6)
    x0 = torch.randint(0, 60, (2, 16), generator=g)
    xt = x0.masked_fill(torch.rand(2, 16, generator=g) < 0.5, MASK)
    am = torch.ones_like(x0)
    am[1, 12:] = 0  # row 1: 12 tokens, right-padded to 16
    padded = bd3_logits(model, xt, x0, am, BS)  # (B, L, V)
    alone = bd3_logits(model, xt[1:, :12], x0[1:, :12], None, BS)
    assert torch.allclose(padded[1, :12], alone[0], atol=1e-10)
    # a plain forward (no query-wise mask): block b sees blocks ≤ b, by position id
    plain = model(input_ids=x0).logits  # (B, L, V)
    changed = x0.clone()
    changed[:, 8:] = 3
    assert torch.allclose(model(input_ids=changed).logits[:, :8], plain[:, :8], atol=1e-12)
    earlier = x0.clone()
    earlier[:, 0] = (x0[:, 0] + 1) % 60  # block 0 is seen by block 1
    assert not torch.allclose(model(input_ids=earlier).logits[:, 4:8], plain[:, 4:8])


# ---------------------------------------------------------------------------------------------- the loss
class _Oracle(torch.nn.Module):
    """Reads x_0 from the second half of [x_t ; x_0]: perfect (scale > 0) or uniform (scale 0) logits."""

    def __init__(self, scale: float):
        super().__init__()
        self.scale = scale

    def forward(self, input_ids, attention_mask=None, position_ids=None, logits_positions=None):
        L = input_ids.shape[1] // 2
        logits = self.scale * torch.nn.functional.one_hot(input_ids[:, L:], V).double()  # (B, L, V)
        logits = torch.cat([logits, logits], dim=1)  # (B, 2L, V)
        out = logits[:, logits_positions] if isinstance(logits_positions, slice) else logits[logits_positions]
        return type("Out", (), {"logits": out})()


@pytest.mark.parametrize("scale,expected", [(1e4, 0.0), (0.0, math.log(V - 1))])  # [MASK] is never a target
def test_bd3_elbo_of_perfect_and_uniform_predictors(scale, expected):
    g = torch.Generator().manual_seed(0)
    x0 = torch.randint(0, 60, (3, 16), generator=g)
    eligible = torch.ones_like(x0, dtype=torch.bool)
    eligible[2, 12:] = False  # a padded tail
    am = eligible.long()
    nll, n = bd3_elbo_nll(_Oracle(scale), x0, eligible=eligible, attention_mask=am, mask_id=MASK, block_size=BS,
                          num_samples=3, generator=g)
    assert n.tolist() == [16, 16, 12]
    assert float(nll.sum() / n.sum()) == pytest.approx(expected, abs=1e-6)
    noisy, masked, t = bd3_noise(x0, eligible, BS, get_schedule("linear"), MASK, t_min=1e-3, antithetic=True,
                                 mode="mdm", generator=g)
    assert t.shape == (12,) and not bool((masked & ~eligible).any())
    logits = _Oracle(scale)(torch.cat([noisy, x0], 1), logits_positions=torch.cat([masked, masked & False], 1)).logits
    out = bd3_loss(logits, x0, masked, t, get_schedule("linear"), eligible=eligible, block_size=BS, mask_id=MASK,
                   weighting="elbo", normalization="token")
    if scale > 0:
        assert float(out.loss) == pytest.approx(0.0, abs=1e-6)


def test_one_block_is_the_mdm_loss():
    """block_size = L: the bd3 loss on the same masks equals mdlm.loss.diffusion_loss."""
    from mdlm.loss import diffusion_loss

    g = torch.Generator().manual_seed(3)
    x0 = torch.randint(0, 60, (4, 8), generator=g)
    eligible = torch.ones_like(x0, dtype=torch.bool)
    noisy, masked, t = bd3_noise(x0, eligible, 8, get_schedule("cosine"), MASK, t_min=0.0, antithetic=True,
                                 mode="mdm", generator=g)
    logits = torch.randn(int(masked.sum()), V, generator=g)
    for norm in ("token", "sequence"):
        a = bd3_loss(logits, x0, masked, t, get_schedule("cosine"), eligible=eligible, block_size=8, mask_id=MASK,
                     weighting="elbo", normalization=norm)
        b = diffusion_loss(logits, x0, masked, t, get_schedule("cosine"), eligible=eligible, mask_id=MASK,
                           weighting="elbo", normalization=norm)
        assert torch.allclose(a.loss, b.loss) and torch.allclose(a.weighted_sum, b.weighted_sum)


# ---------------------------------------------------------------------------------------------- the cache
def uncached_fn(model, start: int, block_size: int):
    """The reference: a full forward of the whole canvas under BD3's decoding mask (no cache)."""

    def f(x, am=None):
        keys = None if am is None else am.bool()
        mask = decode_block_mask(0, x.shape[1], start, block_size, keys, x.device)
        return model(input_ids=x, attention_mask=mask, position_ids=default_position_ids(x, am)).logits

    return f


def _same_logits(got, want):
    """Equal up to float32 rounding, which scales with the size of the terms summed, i.e. with the logits' overall
    scale rather than each element's (a cached and an uncached forward sum in other orders: 1.2e-5 apart on a logit of
    0.16 among logits up to ~3 on one CPU, 2026-12-01); a wrong mask or position is off by ~0.1 or more."""
    torch.testing.assert_close(got, want, rtol=0, atol=2e-5 * max(1.0, want.abs().max().item()))


def test_exact_cache_logits_equal_the_training_forward_and_the_uncached_forward():
    model = tiny(dtype=torch.float32)
    g = torch.Generator().manual_seed(2)
    x0 = torch.randint(0, 60, (2, 16), generator=g)
    xt = x0.masked_fill(torch.rand(2, 16, generator=g) < 0.6, MASK)
    train = bd3_logits(model, xt, x0, None, BS)  # (B, L, V): what training sees
    ex = BlockExactLogits(model, None, 0, BS)
    for b in range(4):  # block b: clean blocks < b, then block b as in x_t
        canvas = torch.cat([x0[:, :4 * b], xt[:, 4 * b:]], dim=1)
        for _ in range(2):  # the block's first call (fills the finished block) and a later one (block only)
            got = ex(canvas, 4 * b, 4 * b + 4)  # (B, W, V)
            _same_logits(got, train[:, 4 * b:4 * b + 4])
            ref = uncached_fn(model, 0, BS)(canvas)[:, 4 * b:4 * b + 4]
            _same_logits(got, ref)
    # a prompt of 6 tokens: blocks start at the first generated column (6), the prompt is clean blocks before
    x = torch.cat([x0[:, :6], torch.full((2, 8), MASK)], dim=1)
    x[:, 7] = 9
    ex = BlockExactLogits(model, None, 6, BS)
    _same_logits(ex(x, 6, 10), uncached_fn(model, 6, BS)(x)[:, 6:10])
    x[:, 6:10] = 11
    _same_logits(ex(x, 10, 14), uncached_fn(model, 6, BS)(x)[:, 10:14])
    assert ex.cache.length == 10


STRATEGIES = {
    "llada": dict(schedule="even", temperature=0.0),
    "sampled": dict(schedule="cosine", temperature=1.0, confidence="margin"),
    "fast_dllm": dict(schedule="even", temperature=0.0, unmasking="fast_dllm", threshold=0.3),
    "ancestral": dict(schedule="linear", temperature=1.0, unmasking="ancestral"),
    "guided": dict(schedule="even", temperature=0.0, guidance_scale=1.5),
    "guided_two_calls": dict(schedule="even", temperature=0.0, guidance_scale=1.5, guidance_batch=False,
                             guidance_interval=[0.0, 0.6]),
}


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_cached_decoding_equals_uncached_block_by_block_decoding(model, strategy):
    prompt = torch.randint(0, 60, (2, 5), generator=torch.Generator().manual_seed(4))
    canvas = torch.cat([prompt, torch.full((2, 14), MASK)], dim=1)  # 4 blocks, the last one partial
    cfg = dict(steps=10, **STRATEGIES[strategy])
    out = generate(model, canvas, mask_id=MASK, eos_id=EOS, config=MDLMGenerationConfig(**cfg),
                   generator=torch.Generator().manual_seed(0))
    ref = generate(uncached_fn(model, 5, BS), canvas, mask_id=MASK, eos_id=EOS,
                   config=MDLMGenerationConfig(block_length=BS, **cfg), generator=torch.Generator().manual_seed(0))
    assert torch.equal(out.sequences, ref.sequences)
    assert not bool((out.sequences == MASK).any())
    assert out.positions < ref.positions  # the cache runs the block's columns, not the canvas


ROWS = [(5, 16), (2, 9), (0, 12), (3, 4)]  # (prompt length, generated length)


@pytest.mark.filterwarnings("ignore:steps=")
@pytest.mark.parametrize("strategy", ["llada", "fast_dllm"])
def test_a_padded_batch_decodes_as_its_rows_one_by_one(model, strategy):
    P, G = max(p for p, _ in ROWS), max(g for _, g in ROWS)
    x = torch.full((len(ROWS), P + G), PAD)
    am = torch.zeros_like(x)
    prompts = [torch.randint(0, 60, (p,), generator=torch.Generator().manual_seed(i)) for i, (p, _) in enumerate(ROWS)]
    for i, (p, g) in enumerate(ROWS):
        x[i, P - p:P], x[i, P:P + g], am[i, P - p:P + g] = prompts[i], MASK, 1
    cfg = MDLMGenerationConfig(steps=8, **STRATEGIES[strategy])
    batch = generate(model, x, mask_id=MASK, attention_mask=am, config=cfg).sequences
    for i, (p, g) in enumerate(ROWS):
        alone = torch.cat([prompts[i], torch.full((g,), MASK)]).unsqueeze(0)
        one = generate(model, alone, mask_id=MASK, config=cfg).sequences
        assert torch.equal(batch[i, P - p:P + g], one[0]), i


def test_block_exact_errors(model):
    canvas = torch.cat([torch.arange(4)[None], torch.full((1, 8), MASK)], dim=1)
    with pytest.raises(ValueError, match="block-diffusion model"):
        generate(tiny(block_size=None), canvas, mask_id=MASK,
                 config=MDLMGenerationConfig(steps=8, cache_implementation="block_exact"))
    with pytest.raises(ValueError, match="block_exact"):
        generate(model, canvas, mask_id=MASK, config=MDLMGenerationConfig(steps=8, block_length=4,
                                                                          cache_implementation="dual"))
    with pytest.raises(ValueError, match="block_size"):
        generate(model, canvas, mask_id=MASK, config=MDLMGenerationConfig(steps=8, block_length=8))
    holes = canvas.clone()
    holes[0, 1] = MASK  # a generated position inside the prompt: blocks cannot start at one column
    with pytest.raises(ValueError, match="one run of columns"):
        generate(model, holes, mask_id=MASK, config=MDLMGenerationConfig(steps=8))
    with pytest.raises(ValueError, match="block_size"):
        MDLMConfig(block_size=0)
    with pytest.raises(ValueError, match="exclude"):
        MDLMConfig(block_size=4, is_causal=True)


# ---------------------------------------------------------------------------------------------- the recipe
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from test_training import TINY, _recipe

    out = tmp_path_factory.mktemp("bd3") / "run"
    with redirect_stdout(io.StringIO()):
        trainer = _recipe().train(TINY + ["--objective", "bd3", "--block_size", "16", "--output_dir", str(out),
                                          "--max_steps", "30"])
    return out, trainer


def test_bd3_recipe_loss_falls_and_reports_the_mdm_keys(trained):
    out, trainer = trained
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    assert losses[0] > 5.5  # ≈ log(384) untrained
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5 - 0.5
    final = json.loads((out / "eval_metrics.json").read_text())
    assert final["eval_nll"] < 5.3 and final["eval_tokens"] == 64 * 64  # the MDM's keys, the same eval tokens
    assert final["eval_ppl"] == pytest.approx(math.exp(final["eval_nll"]), rel=1e-6)
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["block_size"] == 16 and cfg["training_objective"]["objective"] == "bd3"
    assert cfg["training_objective"]["block_size"] == 16


def test_saved_bd3_model_reloads_and_decodes_the_same(trained):
    from transformers import AutoModelForMaskedLM

    out, trainer = trained
    model = AutoModelForMaskedLM.from_pretrained(out).eval()
    assert model.config.block_size == 16
    gen = MDLMGenerationConfig.from_pretrained(str(out))
    assert gen.cache_implementation == "block_exact" and gen.block_length == 16
    tok_mask = model.config.mask_token_id
    canvas = torch.cat([torch.arange(3, 9)[None], torch.full((1, 32), tok_mask)], dim=1)
    cfg = MDLMGenerationConfig(steps=16, schedule="even", temperature=0.0, stop_at_eos=False)
    a = generate(model, canvas, mask_id=tok_mask, config=cfg).sequences
    b = generate(trainer.model.eval(), canvas, mask_id=tok_mask, config=cfg).sequences
    assert torch.equal(a, b)


def test_a_bd3_checkpoint_does_not_continue_as_an_mdm(trained, tmp_path):
    from test_training import TINY, _recipe

    out, _ = trained
    with pytest.raises(ValueError, match="continue it with --objective bd3 --block_size 16"):
        _recipe().train(TINY + ["--model_name_or_path", str(out), "--output_dir", str(tmp_path / "x"),
                                "--max_steps", "1"])


@pytest.mark.parametrize("extra,match", [
    (["--objective", "bd3", "--block_size", "24"], "must divide --seq_len"),
    (["--objective", "bd3"], "needs --block_size"),
    (["--objective", "ar", "--block_size", "16"], "--block_size is for --objective bd3"),
    (["--objective", "bd3", "--block_size", "16", "--model_type", "bert"], "mdlm transformer"),
])
def test_bad_bd3_arguments_are_one_clear_error(extra, match, tmp_path):
    from test_training import TINY, _recipe

    with pytest.raises(ValueError, match=match):
        _recipe().train(TINY + extra + ["--output_dir", str(tmp_path / "x"), "--max_steps", "1"])


@pytest.mark.gpu
def test_block_exact_on_cuda_matches_uncached_and_cuda_graph_replays():
    """On a GPU: the exact cache's tokens equal uncached block-by-block decoding (float32), and replaying each
    greedy step as a CUDA graph changes nothing."""
    m = tiny(dtype=torch.float32).cuda()
    prompt = torch.randint(0, 60, (3, 7), generator=torch.Generator().manual_seed(5))
    canvas = torch.cat([prompt, torch.full((3, 24), MASK)], dim=1).cuda()
    cfg = dict(steps=12, schedule="even", temperature=0.0, stop_at_eos=False)
    eager = generate(m, canvas, mask_id=MASK, config=MDLMGenerationConfig(**cfg))
    ref = generate(uncached_fn(m, 7, BS), canvas, mask_id=MASK, config=MDLMGenerationConfig(block_length=BS, **cfg))
    graphs = generate(m, canvas, mask_id=MASK, config=MDLMGenerationConfig(cuda_graphs=True, **cfg))
    assert torch.equal(eager.sequences, ref.sequences)
    assert torch.equal(graphs.sequences, eager.sequences) and graphs.graph_replays > 0


def test_bd3_resume_after_a_kill_continues_exactly(tmp_path):
    """The Trainer machinery holds for bd3: killed after step 3, resumed from checkpoint-2, the same weights as
    an uninterrupted run; the run dir is refused to a run with another objective."""
    from safetensors.torch import load_file
    from test_training import TINY, _Crash, _recipe

    recipe = _recipe()
    args = TINY + ["--objective", "bd3", "--block_size", "8", "--max_steps", "4", "--save_steps", "2",
                   "--max_eval_sequences", "8"]
    with redirect_stdout(io.StringIO()):
        recipe.train(args + ["--output_dir", str(tmp_path / "ref")])
        with pytest.raises(KeyboardInterrupt):
            recipe.train(args + ["--output_dir", str(tmp_path / "cut")], callbacks=(_Crash(3),))
        with pytest.raises(ValueError, match="another run"):
            recipe.train(TINY + ["--max_steps", "4", "--output_dir", str(tmp_path / "cut"),
                                 "--resume_from_checkpoint", "auto"])  # the mdm objective: another run
        recipe.train(args + ["--output_dir", str(tmp_path / "cut"), "--resume_from_checkpoint", "auto"])
    wa, wb = load_file(tmp_path / "ref" / "model.safetensors"), load_file(tmp_path / "cut" / "model.safetensors")
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], rtol=1e-5, atol=1e-6)


def test_corpus_elbo_of_a_bd3_model_is_the_recipes_validation_number(trained):
    """eval/elbo.py's estimator (model_corpus_elbo) on the validation rows agrees with the recipe's eval_nll up to
    Monte-Carlo noise (same rows, same tokens, other masks)."""
    from mdlm.training.bd3 import model_corpus_elbo

    out, trainer = trained
    final = json.loads((out / "eval_metrics.json").read_text())
    ids = torch.tensor(trainer.eval_dataset["input_ids"])  # (64, 64)
    model = trainer.model.eval()
    res = model_corpus_elbo(model, ids, mask_id=model.config.mask_token_id, batch_size=64, num_samples=4,
                            generator=torch.Generator().manual_seed(1))
    assert int(res.num_tokens.sum()) == final["eval_tokens"]
    assert res.nats_per_token == pytest.approx(final["eval_nll"], abs=0.1)
