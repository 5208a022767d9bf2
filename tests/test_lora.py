"""LoRA SFT (mdlm/lora.py, recipes/sft_lora.py): the loss region is the response, only the adapter
trains, save → load → merge keeps the logits, adapters refuse another base, bad data fails clearly.
Tiny models built here, CPU, seconds."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForMaskedLM, AutoTokenizer, TrainingArguments

from ports import free_port

import mdlm  # noqa: F401
from mdlm.data.sft import format_prompt
from mdlm.lora import FINGERPRINT_FILE, LoraArguments, apply_lora, load_adapter, merge_adapter
from mdlm.modeling import MDLMConfig, MDLMForMaskedLM
from mdlm.tokenizers.text import padded_vocab_size, train_bpe
from mdlm.training import DiffusionArguments

ROOT = Path(__file__).resolve().parents[1]
MERGE_ATOL = 1e-5  # fp32: W·x + B(A·x) vs (W + BA)·x differ only by summation order (~1e-6 seen)
CORPUS = [
    "<|user|>\nDefine dog.\n<|assistant|>\na domesticated canine kept as a pet\n",
    "<|user|>\nGive a synonym of big.\n<|assistant|>\nlarge\n",
    "<|user|>\nUse cat in a sentence.\n<|assistant|>\nThe cat sat on the mat.\n",
    "the quick brown fox jumps over the lazy dog; a word, a sense, a definition of it.",
]
ROWS = [
    {"prompt": "Define dog.", "response": "a domesticated canine kept as a pet"},
    {"prompt": "Give a synonym of big.", "response": "large"},
    {"prompt": "Use cat in a sentence.", "response": "The cat sat on the mat."},
    {"prompt": "Define fox.", "response": "a quick brown animal"},
    {"prompt": "Give a synonym of quick.", "response": "fast"},
    {"prompt": "Use word in a sentence.", "response": "A word has a sense."},
    {"prompt": "Define mat.", "response": "a floor covering"},
    {"prompt": "Define pet.", "response": "a domesticated animal kept for company"},
]
EMB_TOKENS = ["mask_token", "eos_token"]


def _recipe():
    spec = importlib.util.spec_from_file_location("sft_lora", ROOT / "recipes" / "sft_lora.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses need their module registered
    spec.loader.exec_module(mod)
    return mod


def _make_base(path: Path, tok, hidden: int = 32, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    cfg = MDLMConfig(vocab_size=padded_vocab_size(tok), hidden_size=hidden, intermediate_size=2 * hidden,
                     num_hidden_layers=2, num_attention_heads=2, max_position_embeddings=64,
                     mask_token_id=tok.mask_token_id, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
    MDLMForMaskedLM(cfg).save_pretrained(path)
    tok.save_pretrained(path)
    return path


def _jsonl(path: Path, rows) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def recipe():
    return _recipe()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("lora")
    tok = train_bpe(CORPUS * 8, vocab_size=300)
    return {
        "root": root,
        "tok": tok,
        "base": _make_base(root / "base", tok),
        "other_shape": _make_base(root / "other_shape", tok, hidden=48),
        "other_weights": _make_base(root / "other_weights", tok, seed=1),
        "data": _jsonl(root / "train.jsonl", ROWS),
    }


def _args(world, out, *extra):
    return ["--base_model", str(world["base"]), "--data_files", str(world["data"]), "--output_dir", str(out),
            "--max_length", "48", "--r", "4", "--alpha", "8", "--dropout", "0.0",
            "--train_embedding_tokens", *EMB_TOKENS, "--eval_fraction", "0.25", "--eval_num_samples", "2",
            "--per_device_train_batch_size", "4", "--per_device_eval_batch_size", "8", "--learning_rate", "0.05",
            "--warmup_steps", "0", "--logging_steps", "1", "--report_to", "none", "--use_cpu", "true",
            "--disable_tqdm", "true", "--seed", "0", "--dataloader_num_workers", "0", "--save_strategy", "no",
            "--sample_on_end", "1", "--gen_length", "8", "--gen_block_length", "8", *extra]


@pytest.fixture(scope="module")
def trained(recipe, world):
    """The recipe run once in-process: 3 steps on the tiny JSONL (eval at the end)."""
    out = world["root"] / "adapter"
    trainer = recipe.train(_args(world, out, "--max_steps", "3"))
    return trainer, out


def _batch(tok, n=3):
    torch.manual_seed(0)
    ids = torch.randint(3, len(tok), (n, 20))
    ids[:, 5:9] = tok.mask_token_id
    return ids, torch.ones_like(ids)


def _logits(model, ids, am):
    with torch.no_grad():
        return model(input_ids=ids, attention_mask=am).logits


# ------------------------------------------------------------------------------- loss region
def test_loss_mask_is_exactly_the_response(recipe, world, tmp_path):
    tok = world["tok"]
    sargs = recipe.SFTArguments(base_model=str(world["base"]), data_files=[str(world["data"])], eval_fraction=0.25,
                                max_length=48)
    data = recipe.build_data(sargs, tok, seed=0)
    feats = [data.train[i] for i in range(4)]
    batch = data.collator(feats)
    ids, elig = batch["input_ids"], batch["eligible"]
    by_prompt = {r["prompt"]: r["response"] for r in ROWS}
    for i, f in enumerate(feats):
        n_p = f["prompt_length"]
        # the prompt part is exactly what chat generation feeds the model (format_prompt)
        prompt_text = tok.decode(ids[i, :n_p])
        user = prompt_text.split("<|user|>\n")[1].split("\n<|assistant|>")[0]
        assert ids[i, :n_p].tolist() == tok(format_prompt(tok, user), add_special_tokens=False)["input_ids"]
        resp = tok(by_prompt[user], add_special_tokens=False)["input_ids"]
        # eligible = response tokens, then EOS padding (pad_policy eos) to the batch length; never the prompt
        assert not elig[i, :n_p].any() and elig[i, n_p:].all()
        assert ids[i, n_p : n_p + len(resp)].tolist() == resp
        assert (ids[i, n_p + len(resp) :] == tok.eos_token_id).all()
    # evaluation batches score response + exactly one EOS (nothing attended after it)
    ev = data.eval_collator([data.heldout[i] for i in range(len(data.heldout))])
    for i in range(len(data.heldout)):
        row = data.heldout[i]
        n_resp = len(row["input_ids"]) - row["prompt_length"]
        assert int(ev["eligible"][i].sum()) == n_resp and ev["input_ids"][i, row["prompt_length"] + n_resp - 1] == tok.eos_token_id

    # through MDMTrainer.compute_loss: at t≈1 (exact-count masking) the masked set IS the eligible set,
    # the prompt is passed through untouched and logits are asked for at masked positions only
    base = AutoModelForMaskedLM.from_pretrained(world["base"])
    model = apply_lora(base, LoraArguments(r=4, alpha=8, dropout=0.0), tok)
    seen = {}

    def spy(module, args, kwargs):
        seen.update(noisy=kwargs["input_ids"].clone(), positions=kwargs.get("logits_positions"))

    base.register_forward_pre_hook(spy, with_kwargs=True)
    targs = TrainingArguments(output_dir=str(tmp_path / "t"), use_cpu=True, report_to="none", seed=0)
    for t_min, exact in ((0.9999, True), (0.3, False)):
        diff = DiffusionArguments(t_min=t_min, masking="maskgit", normalization="sequence")
        trainer = recipe.SFTTrainer(model=model, args=targs, data_collator=data.collator, diffusion_args=diff,
                                    mask_token_id=tok.mask_token_id)
        loss = trainer.compute_loss(model, batch)
        masked = seen["noisy"] == tok.mask_token_id
        assert torch.equal(seen["positions"], masked.reshape(-1).nonzero().squeeze(1))  # flat indices b·L + l
        assert torch.equal(seen["noisy"][~elig], ids[~elig])  # prompt never masked
        assert not (masked & ~elig).any()
        if exact:
            assert torch.equal(masked, elig)
        else:
            assert 0 < int(masked.sum()) < int(elig.sum())
        assert torch.isfinite(loss)


# ---------------------------------------------------------------------------- only adapters
def test_only_adapter_params_and_chosen_embeddings_train(trained, world):
    trainer, _ = trained
    model = trainer.model
    tok = world["tok"]
    chosen = sorted({tok.mask_token_id, tok.eos_token_id})
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all(("lora_" in n) or ("trainable_tokens_delta" in n) for n in trainable), trainable
    assert sum("trainable_tokens_delta" in n for n in trainable) == 1
    # a fresh backward pass: gradients reach exactly the trainable (adapter) parameters
    model.train()
    model.zero_grad(set_to_none=True)
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(4)])
    trainer.compute_loss(model, batch).backward()
    got = {n for n, p in model.named_parameters() if p.grad is not None}
    assert got == set(trainable)
    assert all(model.get_parameter(n).grad.abs().sum() > 0 for n in got if "lora_B" in n or "delta" in n)
    model.zero_grad(set_to_none=True)
    # after the recipe's 3 optimiser steps: every base weight is bit-identical to the checkpoint on disk
    fresh = AutoModelForMaskedLM.from_pretrained(world["base"])
    base_now = {n.replace("base_model.model.", "").replace(".base_layer", "").replace(".token_adapter", ""): p
                for n, p in model.named_parameters() if not p.requires_grad}
    for n, p in fresh.named_parameters():
        assert torch.equal(base_now[n], p), n
    # the effective embedding changed in the chosen rows only (the tied LM head shares them)
    all_ids = torch.arange(fresh.config.vocab_size)[None]
    with torch.no_grad():
        emb_new = model.get_input_embeddings()(all_ids)[0]
        emb_old = fresh.get_input_embeddings()(all_ids)[0]
    changed = (emb_new != emb_old).any(dim=1).nonzero().flatten().tolist()
    assert changed == chosen


# ------------------------------------------------------------------------- save / load / merge
def test_adapter_save_load_merge_same_logits(recipe, trained, world, tmp_path):
    trainer, out = trained
    tok = world["tok"]
    for f in ["adapter_config.json", "adapter_model.safetensors", FINGERPRINT_FILE, "tokenizer.json",
              "generation_config.json", "eval_metrics.json"]:
        assert (out / f).exists(), f
    assert json.loads((out / "adapter_config.json").read_text())["base_model_name_or_path"] == str(world["base"].resolve())
    assert "eval_nll" in json.loads((out / "eval_metrics.json").read_text())
    from mdlm.generation_defaults import load_generation_defaults

    assert load_generation_defaults(str(out))["chat"] is True

    ids, am = _batch(tok)
    trainer.model.eval()
    ref = _logits(trainer.model, ids, am)
    plain = _logits(AutoModelForMaskedLM.from_pretrained(world["base"]).eval(), ids, am)
    assert (ref - plain).abs().max() > 1e-3  # the adapter does something: the comparison is not vacuous

    loaded = load_adapter(AutoModelForMaskedLM.from_pretrained(world["base"]), str(out)).eval()
    torch.testing.assert_close(_logits(loaded, ids, am), ref, atol=MERGE_ATOL, rtol=0)

    merged_dir = tmp_path / "merged"
    recipe.merge(["--adapter", str(out), "--out", str(merged_dir)])
    assert (merged_dir / "model.safetensors").exists() and not (merged_dir / "adapter_config.json").exists()
    merged = AutoModelForMaskedLM.from_pretrained(merged_dir).eval()
    assert isinstance(merged, MDLMForMaskedLM)
    torch.testing.assert_close(_logits(merged, ids, am), ref, atol=MERGE_ATOL, rtol=0)
    assert AutoTokenizer.from_pretrained(merged_dir).mask_token_id == tok.mask_token_id
    assert load_generation_defaults(str(merged_dir))["max_new_tokens"] == 8
    with pytest.raises(ValueError, match="not empty"):
        merge_adapter(str(out), str(merged_dir))

    # the generation loader takes the adapter dir directly (base from adapter_config.json)
    from mdlm.pipelines import load_for_generation

    gen = load_for_generation(str(out))
    torch.testing.assert_close(_logits(gen.model, ids, am), ref, atol=MERGE_ATOL, rtol=0)


def test_adapter_for_another_base_is_refused(trained, world, tmp_path):
    _, out = trained
    with pytest.raises(ValueError, match="hidden_size") as e:
        load_adapter(AutoModelForMaskedLM.from_pretrained(world["other_shape"]), str(out))
    msg = str(e.value)
    assert str(world["base"].resolve()) in msg and str(world["other_shape"]) in msg
    with pytest.raises(ValueError, match="different weights") as e:
        load_adapter(AutoModelForMaskedLM.from_pretrained(world["other_weights"]), str(out))
    assert str(world["base"].resolve()) in str(e.value) and str(world["other_weights"]) in str(e.value)
    with pytest.raises(ValueError, match="made for base"):
        merge_adapter(str(out), str(tmp_path / "m"), base_dir=str(world["other_weights"]))
    # the same base loaded in bf16 is still recognised (weight probe tolerance)
    load_adapter(AutoModelForMaskedLM.from_pretrained(world["base"], dtype=torch.bfloat16), str(out))


# ------------------------------------------------------------------------------- bad input
def test_malformed_jsonl_error_names_the_line(recipe, world, tmp_path):
    bad = _jsonl(tmp_path / "bad.jsonl", [ROWS[0], ROWS[1], '{"prompt": "Define x.", "response": 3}', ROWS[2]])
    with pytest.raises(ValueError, match=r"bad\.jsonl, line 3"):
        recipe.train(_args(world, tmp_path / "o1", "--max_steps", "1") + ["--data_files", str(bad)])
    # the command line prints one error line and exits 2
    broken = _jsonl(tmp_path / "broken.jsonl", [ROWS[0], "{not json"])
    r = subprocess.run([sys.executable, str(ROOT / "recipes" / "sft_lora.py"), *_args(world, tmp_path / "o2"),
                        "--data_files", str(broken)], capture_output=True, text=True, timeout=300,
                       env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert r.returncode == 2, r.stderr[-2000:]
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("error:") and "broken.jsonl, line 2: invalid JSON" in last
    assert not (tmp_path / "o1").exists() or not any((tmp_path / "o1").iterdir())


def test_too_long_prompt_gives_the_documented_error(recipe, world, tmp_path):
    long_rows = ROWS[:3] + [{"prompt": "Define " + "dog " * 60 + ".", "response": "a canine"}]
    data = _jsonl(tmp_path / "long.jsonl", long_rows)
    with pytest.raises(ValueError, match=r"training data \(.*long\.jsonl\): prompt is \d+ tokens but max_length is 48"):
        recipe.train(_args(world, tmp_path / "o", "--max_steps", "1") + ["--data_files", str(data),
                                                                         "--eval_fraction", "0"])
    # truncate_prompt=left keeps the prompt's tail instead (the documented alternative)
    sargs = recipe.SFTArguments(base_model=str(world["base"]), data_files=[str(data)], eval_fraction=0.0,
                                max_length=48, truncate_prompt="left")
    assert max(len(x) for x in recipe.build_data(sargs, world["tok"]).train["input_ids"]) <= 48


def test_lora_arguments_and_token_resolution(world):
    from mdlm.lora import resolve_token_ids

    tok = world["tok"]
    assert LoraArguments().target_modules == ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    ids = resolve_token_ids(["5", "mask_token", "<|user|>"], tok, 320)
    assert 5 in ids and tok.mask_token_id in ids and set(tok("<|user|>", add_special_tokens=False)["input_ids"]) <= set(ids)
    with pytest.raises(ValueError, match="outside"):
        resolve_token_ids(["4000"], tok, 320)
    with pytest.raises(ValueError, match="rank"):
        LoraArguments(r=0)
    base = AutoModelForMaskedLM.from_pretrained(world["base"])
    with pytest.raises(ValueError, match="not modules of this model"):
        apply_lora(base, LoraArguments(target_modules=["query"]))
    # the modules_to_save fallback: whole embedding + LM head trainable
    full = apply_lora(base, LoraArguments(r=2, train_embedding_tokens=["eos_token"], embedding_mode="full"), tok)
    names = [n for n, p in full.named_parameters() if p.requires_grad]
    assert any("embed_tokens.modules_to_save" in n for n in names)
    emb = full.get_input_embeddings().weight
    head = full.get_output_embeddings()
    head_w = head.modules_to_save["default"].weight if hasattr(head, "modules_to_save") else head.weight
    # tied base: the LM head must use the *trainable* embedding copy (peft ties it), or carry its own trainable copy
    assert head_w.requires_grad
    if base.config.tie_word_embeddings and not hasattr(head, "modules_to_save"):
        assert head_w.data_ptr() == emb.data_ptr()


# ---------------------------------------------------------------------------------- DeepSpeed
def _ds_run(world, tmp_path, cfg, port, steps):
    env = dict(os.environ, PYTHONPATH=str(ROOT), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK="0",
               LOCAL_RANK="0", WORLD_SIZE="1", LOCAL_WORLD_SIZE="1", DS_ACCELERATOR="cpu")
    out = tmp_path / cfg
    args = _args(world, out, "--max_steps", str(steps), "--deepspeed", str(ROOT / "recipes" / "deepspeed" / f"{cfg}.json"),
                 "--sample_on_end", "0")
    return subprocess.run([sys.executable, str(ROOT / "recipes" / "sft_lora.py"), *args], cwd=tmp_path,
                          capture_output=True, text=True, env=env, timeout=900), out


@pytest.mark.slow
@pytest.mark.parametrize("cfg", ["zero2", "zero3"])
def test_deepspeed_cpu_trains_and_saves_adapter(world, tmp_path, cfg):
    pytest.importorskip("deepspeed", reason="DeepSpeed is not installed: pip install -e \".[dev]\"")
    r, out = _ds_run(world, tmp_path, cfg, free_port(), 2)
    assert r.returncode == 0, r.stderr[-4000:]
    assert (out / "adapter_model.safetensors").exists() and (out / FINGERPRINT_FILE).exists()
    tuned = load_adapter(AutoModelForMaskedLM.from_pretrained(world["base"]), str(out))
    ids, am = _batch(world["tok"])
    assert torch.isfinite(_logits(tuned, ids, am)).all()


def test_base_fingerprint_of_a_tensor_past_float32_integers():
    """GPT-2-sized embeddings (> 2^24 values) are probed without an out-of-range index."""
    from mdlm.lora import _weight_probe

    m = torch.nn.Module()
    m.big = torch.nn.Parameter(torch.arange(2**24 + 3, dtype=torch.float32), requires_grad=False)
    probe = _weight_probe(m)["big"]
    assert probe[0] == 0.0 and probe[-1] == float(f"{2**24 + 2:.6g}")


@pytest.mark.parametrize("extra", [["--response_length", "0"], ["--response_length", "32", "--pad_policy", "mask"]])
def test_a_bad_response_canvas_is_refused_before_any_data_is_read(tmp_path, extra):
    """--response_length must be >= 1 with EOS padding; the error comes before tokenising (no output dir made)."""
    from mdlm.cli import UserError

    base = tmp_path / "base"
    base.mkdir()
    out = tmp_path / "out"
    with pytest.raises(UserError, match="--response_length"):
        _recipe().train(["--base_model", str(base), "--output_dir", str(out), *extra])
    assert not out.exists()
