"""A full fine-tune carried back as a LoRA extraction (mdlm.adapt.extract, recipes/extract_lora.py), and the
adaptation recipe's multi-launch run: stopped by its time budget, continued by a later launch, on 2 processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
import yaml
from transformers import AutoModelForMaskedLM, set_seed

import mdlm  # noqa: F401
from mdlm.adapt.build import build_mdm
from mdlm.adapt.extract import extract_lora, low_rank_factors
from mdlm.adapt.rebuild import adapt_arguments
from test_adapt import _write_corpus, tiny_mdm, tiny_tokenizer

pytestmark = pytest.mark.usefixtures("one_thread")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPEC = {"model_type": "llama", "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 64}


def test_low_rank_factors_are_the_best_rank_r_approximation():
    g = torch.Generator().manual_seed(0)
    delta = torch.randn(24, 40, generator=g, dtype=torch.float64)  # (out, in)
    s = torch.linalg.svdvals(delta)  # (24,)
    for r in (1, 5, 24, 64):
        b, a, kept = low_rank_factors(delta, r)
        k = min(r, 24)
        assert b.shape == (24, k) and a.shape == (k, 40)
        err = float(((delta - b @ a) ** 2).sum())
        assert err == pytest.approx(float((s[k:] ** 2).sum()), abs=1e-9)  # Eckart–Young: the trailing energy
        assert kept == pytest.approx(1 - err / float((s ** 2).sum()), abs=1e-12)


def _perturbed(model, names_scale: dict[str, float], rows: list[int] | None = None):
    """A copy of ``model`` whose named tensors (suffix match) moved by scale · noise; ``rows``: only those rows."""
    tuned = type(model)(model.config)
    tuned.load_state_dict(model.state_dict())
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in tuned.named_parameters():
            for suffix, scale in names_scale.items():
                if name.endswith(suffix):
                    noise = scale * torch.randn(p.shape, generator=g)
                    if rows is not None and p.dim() == 2 and p.shape[0] == model.config.vocab_size:
                        keep = torch.zeros(p.shape[0], 1)
                        keep[rows] = 1
                        noise = noise * keep
                    p.add_(noise)
    return tuned.eval()


def _real_tokens(logits: torch.Tensor, mask_id: int) -> torch.Tensor:
    """The logits without the [MASK] column: the loss and the sampler set it to −∞ (the model never predicts
    [MASK]), and peft's trainable row is the input embedding's, not the tied head's."""
    return torch.cat([logits[..., :mask_id], logits[..., mask_id + 1:]], dim=-1)


def test_a_full_rank_extraction_reproduces_the_tuned_model_and_a_low_rank_one_keeps_less():
    base, tok = tiny_mdm()
    mask = tok.mask_token_id
    tuned = _perturbed(base, {"q_proj.weight": 0.05, "down_proj.weight": 0.05, "embed_tokens.weight": 0.3}, rows=[mask])
    ids = torch.randint(0, 40, (3, 12), generator=torch.Generator().manual_seed(2))
    ids[:, ::3] = mask
    want = _real_tokens(tuned(input_ids=ids).logits, mask)
    fresh, _ = tiny_mdm()
    full, kept = extract_lora(fresh, tuned, rank=64, tokenizer=tok)
    assert min(kept.values()) == pytest.approx(1.0)
    assert torch.allclose(_real_tokens(full.eval()(input_ids=ids).logits, mask), want, atol=1e-5)
    fresh, _ = tiny_mdm()
    low, kept1 = extract_lora(fresh, tuned, rank=1, tokenizer=tok)
    q = [v for k, v in kept1.items() if "q_proj" in k]
    assert all(0 < v < 0.5 for v in q)  # one direction of a random 32×32 change holds far less than half its energy
    assert not torch.allclose(_real_tokens(low.eval()(input_ids=ids).logits, mask), want, atol=1e-3)


def test_extraction_refuses_a_change_a_lora_cannot_carry():
    base, tok = tiny_mdm()
    tuned = _perturbed(base, {"input_layernorm.weight": 0.1})
    fresh, _ = tiny_mdm()
    with pytest.raises(ValueError, match="input_layernorm.weight differs"):
        extract_lora(fresh, tuned, rank=4, tokenizer=tok)
    tuned = _perturbed(base, {"embed_tokens.weight": 0.1}, rows=[3])  # a row other than [MASK]
    fresh, _ = tiny_mdm()
    with pytest.raises(ValueError, match="embed_tokens.weight differs"):
        extract_lora(fresh, tuned, rank=4, tokenizer=tok)


def _run_args(tmp_path, tokdir, out):
    return ["--random_config", json.dumps(SPEC), "--tokenizer", str(tokdir), "--data", str(tmp_path / "corpus.txt"),
            "--seq_len", "24", "--max_eval_rows", "5", "--output_dir", str(out), "--learning_rate", "0.01",
            "--per_device_train_batch_size", "4", "--per_device_eval_batch_size", "2", "--eval_num_samples", "1",
            "--report_to", "none", "--use_cpu", "true", "--disable_tqdm", "true", "--logging_steps", "2",
            "--seed", "0", "--dataloader_num_workers", "0", "--weight_decay", "0"]


@pytest.fixture
def corpus(tmp_path):
    """(tokenizer dir, subprocess env) with the tests' tiny tokenizer and corpus.txt in ``tmp_path``."""
    tokdir = tmp_path / "tok"
    tiny_tokenizer().save_pretrained(tokdir)
    _write_corpus(tmp_path / "corpus.txt")
    return tokdir, dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS="1")


@pytest.mark.slow
def test_projection_finetune_travels_as_an_exact_extraction(tmp_path, corpus):
    tokdir, env = corpus
    out = tmp_path / "full"
    run = [sys.executable, os.path.join(ROOT, "recipes", "adapt_ar.py"), *_run_args(tmp_path, tokdir, out),
           "--lora", "false", "--full_scope", "projections", "--max_steps", "8", "--eval_strategy", "no",
           "--save_strategy", "no"]
    p = subprocess.run(run, env=env, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    cfg = tmp_path / "adapt.yaml"
    cfg.write_text(yaml.safe_dump({"random_config": json.dumps(SPEC), "tokenizer": str(tokdir), "seq_len": 24,
                                   "seed": 0}), encoding="utf-8")
    set_seed(0)
    base, tok = build_mdm(adapt_arguments(str(cfg)))
    tuned = AutoModelForMaskedLM.from_pretrained(out).eval()
    b, t = base.state_dict(), tuned.state_dict()
    moved = {k for k in b if not torch.equal(b[k], t[k])}
    assert moved and all(k.endswith("_proj.weight") or "embed_tokens" in k or "lm_head" in k for k in moved)
    emb_rows = (b["lm.model.embed_tokens.weight"] != t["lm.model.embed_tokens.weight"]).any(1).nonzero().flatten()
    assert emb_rows.tolist() == [tok.mask_token_id]  # only the [MASK] row of the (tied) embedding trained

    lora = tmp_path / "lora"
    bad = subprocess.run([sys.executable, os.path.join(ROOT, "recipes", "extract_lora.py"), "--config", str(cfg),
                          "--tuned", str(tmp_path / "nothing"), "--output_dir", str(lora)], env=env,
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0 and "holds no model" in bad.stderr
    p = subprocess.run([sys.executable, os.path.join(ROOT, "recipes", "extract_lora.py"), "--config", str(cfg),
                        "--tuned", str(out), "--rank", "64", "--output_dir", str(lora)], env=env,
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    assert json.loads((lora / "extract_lora.json").read_text())["kept_energy_min"] == pytest.approx(1.0)
    from mdlm.lora import load_adapter

    set_seed(0)
    fresh, _ = build_mdm(adapt_arguments(str(cfg)))
    merged = load_adapter(fresh, str(lora), merge=True).eval()  # the base fingerprint matches the rebuilt base
    ids = torch.randint(0, 40, (2, 16), generator=torch.Generator().manual_seed(0))
    ids[:, 1::2] = tok.mask_token_id
    with torch.no_grad():
        got, want = (_real_tokens(m(input_ids=ids).logits, tok.mask_token_id) for m in (merged, tuned))
        assert torch.allclose(got, want, atol=1e-4)


@pytest.mark.slow
def test_two_process_run_stopped_by_its_budget_continues_and_scores_each_row_once(tmp_path, corpus):
    from ports import free_port

    tokdir, env = corpus
    out = tmp_path / "run"

    def launch(*extra):
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
               str(free_port()), os.path.join(ROOT, "recipes", "adapt_ar.py"), *_run_args(tmp_path, tokdir, out),
               "--lora", "false", "--max_steps", "30", "--eval_strategy", "no", "--save_strategy", "steps",
               "--save_steps", "1000", *extra]
        p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900, cwd=tmp_path)
        assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
        return p.stdout + p.stderr

    launch("--time_budget_s", "0.001", "--results_json", str(tmp_path / "a.json"))  # stops at the first check (step 10)
    first = json.loads((tmp_path / "a.json").read_text())
    assert first["steps"] == 10 and (out / "checkpoint-10").is_dir()
    log = launch("--time_budget_s", "0", "--resume_from_checkpoint", "auto", "--results_json", str(tmp_path / "b.json"))
    assert "resuming from" in log and "checkpoint-10" in log
    second = json.loads((tmp_path / "b.json").read_text())
    assert second["steps"] == 30 and second["train_tokens"] == 30 * 4 * 2 * 24
    # 5 held-out rows over 2 ranks × 2 per batch: accelerate repeats rows to even the shares, and they are dropped
    assert second["final"]["eval_validation_tokens"] == 5 * 24
