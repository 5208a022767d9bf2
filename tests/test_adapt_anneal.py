"""DiffuLLaMA's attention-mask annealing (mdlm/adapt/anneal.py): the schedule, the mask, the wrapper under it, and
a tiny adaptation that anneals and still learns."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from test_adapt import N_WORDS, tiny_lm, tiny_mdm

from mdlm.adapt.anneal import AttentionAnnealCallback, anneal_ratio, annealed_attention_mask

pytestmark = pytest.mark.usefixtures("one_thread")


def test_the_ratio_rises_linearly_then_stays_at_one():
    assert [anneal_ratio(s, 4) for s in (0, 1, 2, 4, 9)] == [0.0, 0.25, 0.5, 1.0, 1.0]
    assert anneal_ratio(0, 0) == 1.0  # no annealing: bidirectional from the start
    with pytest.raises(ValueError, match="anneal_steps"):
        anneal_ratio(0, -1)


def test_the_mask_goes_from_causal_to_full_and_opens_about_ratio_of_the_upper_triangle():
    L = 64
    causal = torch.ones(L, L, dtype=torch.bool).tril()
    assert torch.equal(annealed_attention_mask(2, L, 0.0)[:, 0], causal.expand(2, L, L))
    assert annealed_attention_mask(2, L, 1.0).all()
    m = annealed_attention_mask(4, L, 0.3, generator=torch.Generator().manual_seed(0))  # (4, 1, L, L)
    assert m.shape == (4, 1, L, L) and m[:, 0][:, causal].all()  # the causal part always stays open
    upper = m[:, 0][:, ~causal].float()
    assert abs(upper.mean().item() - 0.3) < 0.02  # 4 · 2016 draws
    assert not torch.equal(m[0], m[1])  # drawn per row
    again = annealed_attention_mask(4, L, 0.3, generator=torch.Generator().manual_seed(0))
    assert torch.equal(m, again)  # a seeded draw repeats (a resumed run sees the same masks)


def test_padding_keys_are_closed_and_every_query_sees_itself():
    kp = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])
    m = annealed_attention_mask(2, 5, 0.7, key_padding=kp, generator=torch.Generator().manual_seed(1))[:, 0]
    assert not m[0, 2:, :2].any()  # no real query attends to padding
    assert m.diagonal(dim1=-2, dim2=-1).all()  # no empty row
    with pytest.raises(ValueError, match="ratio"):
        annealed_attention_mask(1, 4, 1.5)


@pytest.mark.parametrize("kind", ["llama", "gpt2"])
def test_ratio_zero_is_the_causal_source_and_ratio_one_the_bidirectional_mdm(kind):
    """LLaDA alignment: under a fully closed anneal mask the wrapper computes exactly what its source LM computes
    causally; under a fully open one, what it computes bidirectionally (its eval / sampler forward)."""
    model, tok = tiny_mdm(kind, "llada")
    source = tiny_lm(kind, len(tok) - 1)  # same seed → the same weights as the wrapper's backbone (before [MASK])
    x = torch.randint(0, N_WORDS, (2, 9))
    with torch.no_grad():
        bidirectional = model.eval()(input_ids=x).logits
        model.train()
        model.attention_anneal = (0.0, torch.Generator().manual_seed(0))
        closed = model(input_ids=x).logits
        model.attention_anneal = (1.0, torch.Generator().manual_seed(0))
        opened = model(input_ids=x).logits
        causal = source.eval()(input_ids=x).logits
    V = causal.shape[-1]
    torch.testing.assert_close(closed[..., :V], causal, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(opened, bidirectional, rtol=1e-4, atol=1e-4)
    assert not torch.allclose(closed, bidirectional, atol=1e-3)


def test_eval_mode_ignores_the_anneal_and_the_dream_separator_keeps_its_column():
    model, tok = tiny_mdm("llama", "dream")
    x = torch.randint(0, N_WORDS, (2, 7))
    am = torch.ones_like(x)
    am[0, :2] = 0
    with torch.no_grad():
        plain = model.eval()(input_ids=x, attention_mask=am).logits
        model.attention_anneal = (0.0, torch.Generator().manual_seed(0))
        assert torch.equal(model(input_ids=x, attention_mask=am).logits, plain)  # eval: bidirectional
        model.train()
        annealed = model(input_ids=x, attention_mask=am).logits
    assert annealed.shape == plain.shape and torch.isfinite(annealed[0, 2:]).all()


def test_the_callback_sets_each_steps_ratio_and_clears_it_at_the_end():
    model, _ = tiny_mdm("llama", "llada")
    cb = AttentionAnnealCallback(4, seed=3)
    args = SimpleNamespace(process_index=0)
    seen = []
    for step in (0, 2, 4):
        cb.on_step_begin(args, SimpleNamespace(global_step=step), None, model=model)
        seen.append(None if model.attention_anneal is None else model.attention_anneal[0])
    assert seen == [0.0, 0.5, None]
    with pytest.raises(ValueError):
        AttentionAnnealCallback(-1)


def test_a_tiny_adaptation_with_annealing_anneals_and_the_elbo_falls(tmp_path, capsys):
    """recipes/adapt_ar.py --attention_anneal_steps 20: the first 20 of 30 steps train under the annealed mask (ratio
    0 → 0.95, as the callback saw it at each step's end), the rest bidirectionally, and the held-out ELBO falls."""
    import importlib.util
    import json
    import os
    import sys

    from test_adapt import ROOT, _write_corpus, tiny_tokenizer
    from transformers import TrainerCallback

    from mdlm.modeling.causal_backbone import CausalBackboneForMaskedLM

    spec = importlib.util.spec_from_file_location("adapt_ar", os.path.join(ROOT, "recipes", "adapt_ar.py"))
    adapt_ar = importlib.util.module_from_spec(spec)
    sys.modules["adapt_ar"] = adapt_ar
    spec.loader.exec_module(adapt_ar)

    class Probe(TrainerCallback):
        def __init__(self):
            self.ratios: list[float | None] = []

        def on_step_end(self, args, state, control, model=None, **kwargs):
            m = next(x for x in model.modules() if isinstance(x, CausalBackboneForMaskedLM))
            self.ratios.append(None if m.attention_anneal is None else m.attention_anneal[0])

    tokdir = tmp_path / "tok"
    tiny_tokenizer().save_pretrained(tokdir)
    _write_corpus(tmp_path / "corpus.txt")
    cfg = {"model_type": "llama", "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
           "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 64}
    argv = ["--random_config", json.dumps(cfg), "--tokenizer", str(tokdir), "--data", str(tmp_path / "corpus.txt"),
            "--seq_len", "24", "--max_eval_rows", "8", "--lora", "true", "--r", "8", "--alpha", "16",
            "--target_modules", "q_proj", "v_proj", "--output_dir", str(tmp_path / "run"), "--max_steps", "30",
            "--learning_rate", "0.01", "--per_device_train_batch_size", "8", "--eval_num_samples", "2",
            "--eval_strategy", "no", "--eval_on_start", "true", "--save_strategy", "no", "--report_to", "none",
            "--use_cpu", "true", "--disable_tqdm", "true", "--logging_steps", "10", "--seed", "0",
            "--attention_anneal_steps", "20"]
    probe = Probe()
    trainer = adapt_ar.train(argv, callbacks=(probe,))
    assert "attention-mask annealing done at step 20" in capsys.readouterr().out
    assert probe.ratios[:3] == [0.0, 0.05, 0.1] and probe.ratios[19] == 0.95 and probe.ratios[20:] == [None] * 10
    curve = [p for p in trainer.adapt_result["curve"] if p["eval"] == "validation"]
    assert curve[-1]["step"] == 30 and curve[-1]["elbo_ppl"] < 0.9 * curve[0]["elbo_ppl"]
