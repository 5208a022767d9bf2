"""AR → MDM adaptation: any HF causal LM as a bidirectional denoiser (mdlm.modeling.causal_backbone, mdlm.adapt)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import (AutoModelForCausalLM, AutoModelForMaskedLM, GPT2Config, LlamaConfig,
                          PreTrainedTokenizerFast)

import mdlm  # noqa: F401
from mdlm.adapt import add_mask_token, load_causal_lm, to_masked_diffusion
from mdlm.evaluation.elbo import elbo_nll
from mdlm.modeling.causal_backbone import CausalBackboneConfig, CausalBackboneForMaskedLM

pytestmark = pytest.mark.usefixtures("one_thread")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
N_WORDS = 40
CHAT = "{% for m in messages %}<|{{ m['role'] }}|> {{ m['content'] }} <eos> {% endfor %}" \
       "{% if add_generation_prompt %}<|assistant|> {% endif %}"


def tiny_tokenizer() -> PreTrainedTokenizerFast:
    vocab = {f"w{i}": i for i in range(N_WORDS)}
    for extra in ("<unk>", "<eos>", "<|user|>", "<|assistant|>", "<|system|>"):
        vocab[extra] = len(vocab)
    t = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    t.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = PreTrainedTokenizerFast(tokenizer_object=t, unk_token="<unk>", eos_token="<eos>", bos_token="<eos>",
                                  pad_token="<eos>")
    tok.chat_template = CHAT
    return tok


def tiny_lm(kind: str, vocab: int, seed: int = 0):
    torch.manual_seed(seed)
    if kind == "llama":
        cfg = LlamaConfig(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                          num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                          tie_word_embeddings=True, bos_token_id=None, eos_token_id=None, pad_token_id=None)
    else:
        cfg = GPT2Config(vocab_size=vocab, n_embd=32, n_layer=2, n_head=4, n_positions=128, bos_token_id=None,
                         eos_token_id=None, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    return AutoModelForCausalLM.from_config(cfg)


def tiny_mdm(kind="llama", alignment="dream", seed=0):
    tok = tiny_tokenizer()
    model, tok = to_masked_diffusion(tiny_lm(kind, len(tok), seed), tok, logit_alignment=alignment)
    return model.eval(), tok


# ------------------------------------------------------------------------------------------- the wrapper
@pytest.mark.parametrize("kind", ["llama", "gpt2"])
@pytest.mark.parametrize("alignment", ["llada", "dream"])
def test_wrapper_is_bidirectional_and_adds_a_mean_mask_row(kind, alignment):
    model, tok = tiny_mdm(kind, alignment)
    emb = model.get_input_embeddings().weight
    assert tok.mask_token_id == len(tok) - 1 == emb.shape[0] - 1
    torch.testing.assert_close(emb[tok.mask_token_id], emb[:-1].mean(0))
    x = torch.randint(0, N_WORDS, (2, 9))
    y = x.clone()
    y[:, -1] = (y[:, -1] + 1) % N_WORDS
    with torch.no_grad():
        a, b = model(input_ids=x).logits, model(input_ids=y).logits
    assert a.shape == (2, 9, emb.shape[0])
    assert (a[:, 0] - b[:, 0]).abs().max() > 1e-6  # the first position sees the last token
    assert model.config.logit_alignment == alignment


def test_dream_alignment_keeps_the_ar_heads_next_token_logits(monkeypatch):
    """Dream: row i of the wrapper is the backbone's output at the token before i (the separator for i = 0). Run
    the backbone causally and the wrapper's logits are exactly the AR model's next-token logits."""
    model, tok = tiny_mdm("llama", "dream")
    x = torch.randint(0, N_WORDS, (2, 7))
    sep = torch.full((2, 1), model.config.shift_token_id)
    with torch.no_grad():
        ar = model.lm(input_ids=torch.cat([sep, x], 1)).logits[:, :-1]  # (2, 7, V): row i predicts x_i from x_<i
        bidirectional = model(input_ids=x).logits
        forward = model.lm.forward
        monkeypatch.setattr(model.lm, "forward", lambda *a, is_causal=None, **kw: forward(*a, **kw))
        causal = model(input_ids=x).logits
    torch.testing.assert_close(causal, ar)
    assert (bidirectional[:, :-1] - ar[:, :-1]).abs().max() > 1e-6  # later tokens are seen


class _Oracle(torch.nn.Module):
    """A 'causal LM' that knows the clean sequence of its input (``[sep] + clean`` under the Dream alignment): row j
    of its logits is one-hot on clean input token j (``same``, a perfect LLaDA-style predictor) or j + 1 (``next``,
    a perfect AR-style next-token predictor)."""

    def __init__(self, clean: torch.Tensor, vocab: int, sep: int, mode: str):
        super().__init__()
        self.clean, self.vocab, self.sep, self.mode = clean, vocab, sep, mode
        self.config = SimpleNamespace(_attn_implementation="eager")
        self.w = torch.nn.Parameter(torch.zeros(1))

    def forward(self, input_ids, **kw):
        full = self.clean
        if input_ids.shape[1] == full.shape[1] + 1:
            full = torch.cat([torch.full_like(full[:, :1], self.sep), full], 1)
        target = full if self.mode == "same" else torch.cat([full[:, 1:], full[:, -1:]], 1)
        return SimpleNamespace(logits=40.0 * torch.nn.functional.one_hot(target, self.vocab).float())


@pytest.mark.parametrize("alignment,mode", [("llada", "same"), ("dream", "next")])
def test_a_perfect_predictor_has_elbo_zero_in_both_conventions(alignment, mode):
    V, clean = 12, torch.randint(0, 10, (3, 8))
    cfg = CausalBackboneConfig(backbone_config=LlamaConfig(vocab_size=V, hidden_size=8, num_attention_heads=2),
                               logit_alignment=alignment, mask_token_id=11, shift_token_id=10)
    right = CausalBackboneForMaskedLM(cfg, lm=_Oracle(clean, V, 10, mode))
    wrong = CausalBackboneForMaskedLM(cfg, lm=_Oracle(clean, V, 10, "next" if mode == "same" else "same"))
    eligible = torch.ones_like(clean, dtype=torch.bool)
    g = torch.Generator().manual_seed(0)
    res = elbo_nll(lambda x, am: right(input_ids=x).logits, clean, eligible=eligible, mask_id=11, num_samples=4, generator=g)
    bad = elbo_nll(lambda x, am: wrong(input_ids=x).logits, clean, eligible=eligible, mask_id=11, num_samples=4, generator=g)
    assert res.nats_per_token < 1e-6
    assert bad.nats_per_token > 1.0  # the alignment matters: shifted by one, the oracle is wrong


# ---------------------------------------------------------------------------------------- save / load
@pytest.mark.parametrize("kind,alignment", [("llama", "dream"), ("gpt2", "llada")])
def test_save_load_round_trip_with_tokenizer_and_chat_template(kind, alignment, tmp_path):
    model, tok = tiny_mdm(kind, alignment)
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    back = AutoModelForMaskedLM.from_pretrained(tmp_path, use_safetensors=True).eval()
    from transformers import AutoTokenizer

    tok2 = AutoTokenizer.from_pretrained(tmp_path)
    assert isinstance(back, CausalBackboneForMaskedLM)
    assert back.config.logit_alignment == alignment and back.config.mask_token_id == tok2.mask_token_id
    assert tok2.mask_token_id == tok.mask_token_id and tok2.chat_template == CHAT
    x = torch.randint(0, N_WORDS, (2, 6))
    with torch.no_grad():
        torch.testing.assert_close(back(input_ids=x).logits, model(input_ids=x).logits)


# --------------------------------------------------------------------------------------------- sampler
@pytest.mark.parametrize("lora", [False, True])
def test_sampler_ragged_padded_batch_equals_one_by_one(lora):
    """Also through peft (whose forward hides ``input_ids``, so the sampler passes no position ids)."""
    from mdlm.pipelines.text import generate_text, sampler_config_from

    model, tok = tiny_mdm("llama", "dream", seed=3)
    if lora:
        from mdlm.lora import LoraArguments, apply_lora

        model = apply_lora(model, LoraArguments(r=4, target_modules=["q_proj", "v_proj"]), tok).eval()
    cfg, gen = sampler_config_from({"mask_token_id": tok.mask_token_id, "eos_token_id": None, "pad_token_id": tok.pad_token_id,
                                    "gen_length": 8, "steps": 8, "block_length": 4, "temperature": 0.0,
                                    "remasking": "low_confidence", "schedule": "even", "stop_at_eos": False}, {})
    prompts = ["w1 w2 w3 w4 w5", "w7", "", "w9 w3"]  # "" = unconditional, beside prompted rows
    batch, _ = generate_text(model, tok, prompts, cfg, gen)
    single = [generate_text(model, tok, [p], cfg, gen)[0][0] for p in prompts]
    assert batch == single
    assert any(t.strip() for t in batch)  # something was decoded (special tokens are dropped from the text)


def test_kv_cache_modes_refuse_this_backbone_clearly():
    from mdlm.sampling import SamplerConfig, generate

    model, tok = tiny_mdm("gpt2", "llada")
    canvas = torch.full((1, 8), tok.mask_token_id)
    with pytest.raises((TypeError, ValueError), match="supports_block_kv_cache.*has none.*without a cache"):
        generate(model, canvas, mask_id=tok.mask_token_id, config=SamplerConfig(steps=4, block_length=4, cache="dual"))


# ---------------------------------------------------------------------------------------- training
def _write_corpus(path):
    lines = [" ".join(f"w{(i + j) % 8}" for j in range(12)) for i in range(240)]  # a learnable, repetitive text
    path.write_text("\n\n\n".join(lines), encoding="utf-8")


@pytest.mark.parametrize("kind,lora", [("llama", True), ("gpt2", False)])
def test_recipe_adapts_a_tiny_model_and_the_elbo_falls(kind, lora, tmp_path):
    adapt_ar = _load_adapt_recipe()

    tokdir = tmp_path / "tok"
    tiny_tokenizer().save_pretrained(tokdir)
    _write_corpus(tmp_path / "corpus.txt")
    spec = ({"model_type": "llama", "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
             "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 64} if kind == "llama" else
            {"model_type": "gpt2", "n_embd": 32, "n_layer": 2, "n_head": 4, "n_positions": 64})
    targets = ["q_proj", "v_proj"] if kind == "llama" else ["c_attn"]
    out = tmp_path / "run"
    argv = ["--random_config", json.dumps(spec), "--tokenizer", str(tokdir), "--data", str(tmp_path / "corpus.txt"),
            "--seq_len", "24", "--max_eval_rows", "8", "--lora", str(lora).lower(), "--r", "8", "--alpha", "16",
            "--target_modules", *targets, "--output_dir", str(out), "--max_steps", "30", "--learning_rate", "0.01",
            "--per_device_train_batch_size", "8", "--eval_num_samples", "2", "--eval_strategy", "no",
            "--eval_on_start", "true", "--save_strategy", "no", "--report_to", "none", "--use_cpu", "true",
            "--disable_tqdm", "true", "--logging_steps", "10", "--seed", "0", "--results_json", str(tmp_path / "r.json")]
    trainer = adapt_ar.train(argv)
    res = trainer.adapt_result
    curve = [p for p in res["curve"] if p["eval"] == "validation"]
    assert curve[0]["step"] == 0 and curve[-1]["step"] == 30
    assert curve[-1]["elbo_ppl"] < 0.9 * curve[0]["elbo_ppl"]  # the ELBO falls (fixed eval masks: comparable)
    assert json.loads((tmp_path / "r.json").read_text())["steps"] == 30
    if lora:
        assert (out / "adapter_config.json").is_file() and (out / "adapter_model.safetensors").is_file()
        from mdlm.lora import load_adapter

        base = tiny_mdm_from_spec(spec, tokdir)
        load_adapter(base, str(out))  # the fingerprint matches the rebuilt base
    else:
        back = AutoModelForMaskedLM.from_pretrained(out)
        assert isinstance(back, CausalBackboneForMaskedLM) and back.config.backbone_config.model_type == "gpt2"


def _load_adapt_recipe():
    spec = importlib.util.spec_from_file_location("adapt_ar", os.path.join(ROOT, "recipes", "adapt_ar.py"))
    adapt_ar = importlib.util.module_from_spec(spec)
    sys.modules["adapt_ar"] = adapt_ar  # its dataclasses look their module up
    spec.loader.exec_module(adapt_ar)
    return adapt_ar


def _tiny_recipe_argv(tmp_path, *extra):
    tokdir = tmp_path / "tok"
    tiny_tokenizer().save_pretrained(tokdir)
    _write_corpus(tmp_path / "corpus.txt")
    spec = {"model_type": "llama", "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
            "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 64}
    return ["--random_config", json.dumps(spec), "--tokenizer", str(tokdir), "--data", str(tmp_path / "corpus.txt"),
            "--seq_len", "24", "--max_eval_rows", "4", "--lora", "false", "--output_dir", str(tmp_path / "run"),
            "--per_device_train_batch_size", "8", "--eval_num_samples", "1", "--eval_strategy", "no",
            "--save_strategy", "no", "--report_to", "none", "--use_cpu", "true", "--disable_tqdm", "true",
            "--logging_steps", "2", "--seed", "0", "--dataloader_num_workers", "0", *extra]


def test_regional_compile_needs_torch_compile_and_does_not_change_the_run(tmp_path):
    """--regional_compile is a speed setting: refused without --torch_compile, and left out of the run's fingerprint
    (a run may be resumed with or without it)."""
    from mdlm.adapt.args import AdaptArguments

    adapt_ar = _load_adapt_recipe()
    with pytest.raises(ValueError, match="--regional_compile true needs --torch_compile true"):
        adapt_ar.train(_tiny_recipe_argv(tmp_path, "--max_steps", "2", "--regional_compile", "true"))
    assert adapt_ar.fingerprint(AdaptArguments(regional_compile=True)) == adapt_ar.fingerprint(AdaptArguments())


def test_regional_compilation_overrides_an_inherited_setting_and_restores_it(monkeypatch):
    from mdlm.training.compile_mode import REGIONAL_ENV, regional_compilation

    monkeypatch.setenv(REGIONAL_ENV, "1")
    with regional_compilation(False):
        assert os.environ[REGIONAL_ENV] == "0"
    assert os.environ[REGIONAL_ENV] == "1"
    monkeypatch.delenv(REGIONAL_ENV)
    with regional_compilation(True):
        assert os.environ[REGIONAL_ENV] == "1"
    assert REGIONAL_ENV not in os.environ


@pytest.mark.slow
@pytest.mark.parametrize("regional,inherited", [(True, None), (False, "1")])
def test_regional_compile_compiles_each_decoder_layer_and_the_loss_falls(tmp_path, monkeypatch, regional, inherited):
    """--torch_compile true --regional_compile true: the Trainer trains a model whose decoder layers are compiled one
    by one (accelerate's regional compilation); --regional_compile false compiles the whole model even when the
    environment says regional. The original model stays uncompiled (evaluation, saving), the environment is left as
    it was, and the tiny model learns (the training loss falls)."""
    from mdlm.training.compile_mode import REGIONAL_ENV

    adapt_ar = _load_adapt_recipe()
    if inherited is None:
        monkeypatch.delenv(REGIONAL_ENV, raising=False)
    else:
        monkeypatch.setenv(REGIONAL_ENV, inherited)
    # aot_eager: traced and functionalised as for TorchInductor, no code generation (no C++ compiler needed on a CPU)
    trainer = adapt_ar.train(_tiny_recipe_argv(tmp_path, "--max_steps", "12", "--learning_rate", "0.01",
                                               "--torch_compile", "true", "--torch_compile_backend", "aot_eager",
                                               "--regional_compile", str(regional).lower()))
    compiled = trainer.model_wrapped
    if regional:
        assert type(compiled.lm.model.layers[0]).__name__ == "OptimizedModule"
    else:
        assert type(compiled).__name__ == "OptimizedModule"  # one graph for the whole wrapper
        assert type(compiled._orig_mod.lm.model.layers[0]).__name__ == "LlamaDecoderLayer"
    assert type(trainer.model.lm.model.layers[0]).__name__ == "LlamaDecoderLayer"
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    assert len(losses) == 6 and losses[-1] < losses[0]
    assert os.environ.get(REGIONAL_ENV) == inherited  # set only while the Trainer was built


def tiny_mdm_from_spec(spec, tokdir):
    from mdlm.adapt.args import AdaptArguments
    from mdlm.adapt.build import build_mdm

    torch.manual_seed(0)  # the recipe's set_seed(0) before building
    from transformers import set_seed

    set_seed(0)
    model, _ = build_mdm(AdaptArguments(random_config=json.dumps(spec), tokenizer=str(tokdir)))
    return model


# ------------------------------------------------------------------------------------------- bad input
def test_tokenizer_with_no_room_for_mask_is_refused_and_a_spare_row_is_used():
    tok = tiny_tokenizer()
    with pytest.raises(ValueError, match="no room for \\[MASK\\]"):
        add_mask_token(tiny_lm("llama", len(tok)), tok, allow_resize=False)
    tok = tiny_tokenizer()
    lm = tiny_lm("llama", len(tok) + 3)  # a padded vocabulary (Qwen2-style): [MASK] takes a spare row
    assert add_mask_token(lm, tok, allow_resize=False) == len(tok) - 1
    assert lm.get_input_embeddings().num_embeddings == len(tok) + 2


def test_model_without_lm_head_is_refused(tmp_path):
    from transformers import LlamaModel

    tok = tiny_tokenizer()
    body = LlamaModel(LlamaConfig(vocab_size=len(tok), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                  num_attention_heads=2))
    with pytest.raises(ValueError, match="no LM head"):
        to_masked_diffusion(body, tok)
    from transformers import T5Config

    T5Config(vocab_size=32, d_model=16, num_layers=1, num_heads=2, d_kv=8, d_ff=32).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="no causal-LM head"):
        load_causal_lm(str(tmp_path))


def test_gguf_without_the_gguf_package_is_one_clear_error(tmp_path, monkeypatch):
    import importlib.util

    (tmp_path / "m.gguf").write_bytes(b"GGUF")
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "gguf" else real(name, *a))
    with pytest.raises(ValueError, match="needs the 'gguf' package: pip install gguf"):
        load_causal_lm(str(tmp_path), gguf_file="m.gguf")


@pytest.mark.slow  # a subprocess: ~20 s of imports on the shared CPU
def test_cli_bad_source_is_one_error_line(tmp_path):
    from transformers import T5Config

    T5Config(vocab_size=32, d_model=16, num_layers=1, num_heads=2, d_kv=8, d_ff=32).save_pretrained(tmp_path)
    r = subprocess.run([sys.executable, os.path.join(ROOT, "recipes", "adapt_ar.py"), "--source", str(tmp_path),
                        "--output_dir", str(tmp_path / "out"), "--use_cpu", "true"],
                       capture_output=True, text=True, env={**os.environ, "PYTHONPATH": ROOT}, timeout=300)
    assert r.returncode == 2
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "no causal-LM head" in errors[0] and "Traceback" not in r.stderr


# ------------------------------------------------------------------------------------ data, persistence
def test_gcide_cleaning_and_held_out_by_headword():
    from mdlm.data.english import _split, clean_gcide_entry

    raw = 'Ocean \\O"cean\\ ([=o]"shan), n.\n   1. The whole body of {salt water}.\n      [1913 Webster]\n\n   2. An expanse.\n'
    assert clean_gcide_entry(raw) == 'Ocean \\O"cean\\ (o"shan), n. 1. The whole body of salt water.\n2. An expanse.'
    pairs = [(f"word{i % 50}", f"entry {i}") for i in range(500)]
    dd = _split(pairs)
    held = {p[0] for p in pairs if p[1] in set(dd["validation"]["text"])}
    trained = {p[0] for p in pairs if p[1] in set(dd["train"]["text"])}
    assert held and not held & trained


def test_packed_data_round_trip(tmp_path):
    from mdlm.data.packed import load_packed, pack_documents, save_packed

    tok = tiny_tokenizer()
    rows = pack_documents(["w1 w2 w3", "w4 w5", "w6 w7 w8 w9"] * 4, tok, 5, separator_id=tok.eos_token_id)
    assert rows.shape == (9, 5) and int((rows == tok.eos_token_id).sum()) == 11  # 48 ids, tail of 3 dropped
    path = str(tmp_path / ".data" / "d.npz")  # a folder that does not exist yet (.data/ on a fresh clone)
    save_packed(path, {"train": rows, "validation_x": rows[:2]}, vocab_size=len(tok))
    ds = load_packed(path, "validation_x")
    assert ds["input_ids"] == rows[:2].tolist()
    with pytest.raises(ValueError, match="no split 'nope'"):
        load_packed(path, "nope")


def test_adapter_parts_round_trip_and_a_corrupt_part_is_refused(tmp_path):
    from mdlm.adapt.persist import pack_adapter, unpack_adapter
    from mdlm.lora import LoraArguments, apply_lora, load_adapter, save_adapter

    model, tok = tiny_mdm("llama", "dream")
    peft_model = apply_lora(model, LoraArguments(r=4, target_modules=["q_proj", "v_proj"], train_embedding_tokens=["mask_token"]), tok)
    with torch.no_grad():
        for n, p in peft_model.named_parameters():
            if "lora_B" in n:
                p.normal_()
    save_adapter(peft_model, str(tmp_path / "ad"), tokenizer=tok)
    parts = pack_adapter(str(tmp_path / "ad"), str(tmp_path / "pk"), part_mib=1)
    assert parts and all(os.path.getsize(p) <= 1 << 20 for p in parts)
    for f in (tmp_path / "ad").iterdir():  # a later pack of the same files with other time stamps: the same checksums
        os.utime(f, (1e9, 1e9))
    pack_adapter(str(tmp_path / "ad"), str(tmp_path / "pk2"), part_mib=1)
    sums = [(tmp_path / f"{k}.sha256").read_text().replace(k, "") for k in ("pk", "pk2")]
    assert sums[0] == sums[1]
    unpack_adapter(str(tmp_path / "pk"), str(tmp_path / "back"))
    base, _ = tiny_mdm("llama", "dream")
    x = torch.randint(0, N_WORDS, (1, 6))
    tuned = load_adapter(base, str(tmp_path / "back")).eval()
    with torch.no_grad():
        torch.testing.assert_close(tuned(input_ids=x).logits, peft_model.eval()(input_ids=x).logits, atol=0.05, rtol=0.05)
    with open(parts[0], "r+b") as f:
        f.write(b"X")
    with pytest.raises(ValueError, match="SHA-256"):
        unpack_adapter(str(tmp_path / "pk"), str(tmp_path / "again"))


def test_config_and_fingerprint_do_not_depend_on_the_source_path(tmp_path):
    from mdlm.lora import base_fingerprint

    a, _ = tiny_mdm("llama", "dream")
    b, _ = tiny_mdm("llama", "dream")
    a.config.backbone_config._name_or_path = "/somewhere/gguf"
    b.config.backbone_config._name_or_path = "/elsewhere"
    b.config.backbone_config.transformers_version = "0.0.1"
    assert base_fingerprint(a)["config_sha256"] == base_fingerprint(b)["config_sha256"]
    a.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())["backbone_config"]
    assert "_name_or_path" not in saved and saved["model_type"] == "llama"


@pytest.mark.parametrize("kind,targets", [("gpt2", ["c_attn"]), ("llama", ["q_proj", "v_proj"])])
def test_left_padding_changes_no_logit_also_through_peft(kind, targets):
    """peft's forward hides ``input_ids``, so the sampler calls it without position ids: the wrapper derives them
    from the padding mask (GPT-2's absolute positions and the Dream separator's distance depend on it)."""
    from mdlm.lora import LoraArguments, apply_lora
    from mdlm.sampling.adapters import as_logits_fn

    model, tok = tiny_mdm(kind, "dream")
    for m in (model, apply_lora(model, LoraArguments(r=4, target_modules=targets), tok).eval()):
        fn = as_logits_fn(m)
        x = torch.randint(0, N_WORDS, (1, 6))
        padded = torch.cat([torch.full((1, 3), tok.pad_token_id), x], 1)
        am = torch.cat([torch.zeros(1, 3, dtype=torch.long), torch.ones(1, 6, dtype=torch.long)], 1)
        with torch.no_grad():
            torch.testing.assert_close(fn(padded, am)[:, 3:], fn(x, torch.ones_like(x)))


@pytest.mark.parametrize("kind", ["llama", "gpt2"])
@pytest.mark.parametrize("alignment", ["llada", "dream"])
def test_logits_at_masked_positions_equal_the_full_logits_there(kind, alignment):
    """Training needs logits at masked positions only: the wrapper runs the LM head there (a plain head), with the
    same values as indexing the full (B, L, V) logits — by a bool mask or by the flat indices the trainer passes, also
    through peft and with left padding."""
    from mdlm.lora import LoraArguments, apply_lora
    from mdlm.training.trainer import masked_logits

    model, tok = tiny_mdm(kind, alignment)
    assert model.supports_logits_positions
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, N_WORDS, (3, 10), generator=g)
    am = torch.ones_like(x)
    am[0, :4] = 0  # a left-padded row
    x[0, :4] = tok.pad_token_id
    masked = (torch.rand(3, 10, generator=g) < 0.5) & am.bool()
    x = torch.where(masked, tok.mask_token_id, x)
    targets = ["c_attn"] if kind == "gpt2" else ["q_proj", "v_proj"]
    for m in (model, apply_lora(model, LoraArguments(r=4, target_modules=targets), tok).eval()):
        with torch.no_grad():
            full = m(input_ids=x, attention_mask=am).logits  # (B, L, V)
            part = masked_logits(m, x, am, masked)  # (M, V)
            flat = masked_logits(m, x, am, masked, masked.reshape(-1).nonzero().squeeze(1))  # the trainer's path
        assert part.shape == (int(masked.sum()), full.shape[-1])
        torch.testing.assert_close(part, full[masked])
        torch.testing.assert_close(flat, full[masked])


def test_a_head_that_is_not_plain_falls_back_to_the_full_logits(monkeypatch):
    import mdlm.modeling.causal_backbone as cb

    model, tok = tiny_mdm("llama", "dream")
    monkeypatch.setattr(cb, "PLAIN_HEAD_MODEL_TYPES", ())  # e.g. a soft-capped head
    assert not model.supports_logits_positions
    x = torch.randint(0, N_WORDS, (2, 7))
    where = torch.zeros(2, 7, dtype=torch.bool)
    where[:, 2] = True
    with torch.no_grad():
        torch.testing.assert_close(model(input_ids=x, logits_positions=where).logits, model(input_ids=x).logits[:, 2])
