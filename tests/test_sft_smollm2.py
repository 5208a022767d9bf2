"""The SFT path of the adapted SmolLM2 on a tiny random Llama: persistence (adapter parts + sha256 → rebuild from the
source → the same logits; a corrupted part is one error line), and LoRA SFT under DeepSpeed ZeRO-3 on the CPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from ports import free_port
from test_adapt import tiny_tokenizer
from transformers import AutoModelForMaskedLM

import mdlm  # noqa: F401
from mdlm.adapt.persist import pack_adapter
from mdlm.adapt.rebuild import rebuild
from mdlm.lora import LoraArguments, apply_lora, load_adapter, save_adapter

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "eval"))
from adapt_tiny_source import make_tiny_source

pytestmark = pytest.mark.usefixtures("one_thread")


def _random_lora(model, tok, r=4):
    peft_model = apply_lora(model, LoraArguments(r=r, target_modules=["q_proj", "v_proj", "down_proj"]), tok)
    with torch.no_grad():
        for n, p in peft_model.named_parameters():
            if "lora_B" in n:
                p.normal_(std=0.5)
    return peft_model


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A tiny source dir, its adaptation adapter's parts, an SFT adapter's parts, and the tuned model's logits."""
    from mdlm.adapt.build import build_mdm
    from mdlm.adapt.rebuild import adapt_arguments

    d = tmp_path_factory.mktemp("smol")
    tok = tiny_tokenizer()
    src = make_tiny_source(str(d / "src"), tok, hidden=32, layers=2)
    cfg = d / "adapt.yaml"
    cfg.write_text("logit_alignment: dream\nshift_token: <eos>\nseq_len: 32\n", encoding="utf-8")
    model, mtok = build_mdm(adapt_arguments(str(cfg), src, None))
    adapt = _random_lora(model, mtok)
    save_adapter(adapt, str(d / "adapt"), tokenizer=mtok)
    (d / "parts").mkdir()
    pack_adapter(str(d / "adapt"), str(d / "parts" / "adapt"), part_mib=1)
    from mdlm.adapt.persist import unpack_adapter

    unpack_adapter(str(d / "parts" / "adapt"), str(d / "adapt_back"))  # the SFT base is what the parts rebuild (bf16)
    merged = load_adapter(build_mdm(adapt_arguments(str(cfg), src, None))[0], str(d / "adapt_back"), merge=True)
    sft = _random_lora(merged, mtok)
    save_adapter(sft, str(d / "sft"), tokenizer=mtok, generation_defaults={"mask_token_id": mtok.mask_token_id, "chat": True})
    pack_adapter(str(d / "sft"), str(d / "parts" / "sft"), part_mib=1)
    x = torch.randint(0, 40, (2, 7))
    with torch.no_grad():
        logits = sft.eval()(input_ids=x).logits
    return {"dir": d, "src": src, "cfg": str(cfg), "x": x, "logits": logits}


def test_rebuild_from_source_and_parts_gives_the_tuned_model(world, tmp_path):
    d = world["dir"]
    out = rebuild(world["src"], None, str(d / "parts" / "adapt"), str(tmp_path / "r"), adapt_config=world["cfg"],
                  sft_parts=str(d / "parts" / "sft"))
    assert sorted(out) == ["base", "sft"]
    with open(os.path.join(out["sft"], "adapter_config.json"), encoding="utf-8") as f:
        cfg = json.load(f)
    assert cfg["base_model_name_or_path"] == os.path.abspath(out["base"])
    tuned = load_adapter(AutoModelForMaskedLM.from_pretrained(out["base"]), out["sft"]).eval()
    with torch.no_grad():  # bf16-persisted adapters: close, not bit-equal
        torch.testing.assert_close(tuned(input_ids=world["x"]).logits, world["logits"], atol=0.05, rtol=0.05)
    with pytest.raises(ValueError, match="not empty"):
        rebuild(world["src"], None, str(d / "parts" / "adapt"), str(tmp_path / "r"), adapt_config=world["cfg"])


def _sft_parts_with_fingerprint(world, tmp_path, edit):
    """The SFT parts again, with the base fingerprint changed by ``edit(fingerprint)``."""
    from mdlm.adapt.persist import unpack_adapter
    from mdlm.lora import FINGERPRINT_FILE

    unpack_adapter(str(world["dir"] / "parts" / "sft"), str(tmp_path / "sft"))
    fp_path = tmp_path / "sft" / FINGERPRINT_FILE
    fp = json.loads(fp_path.read_text(encoding="utf-8"))
    edit(fp)
    fp_path.write_text(json.dumps(fp), encoding="utf-8")
    (tmp_path / "parts").mkdir()
    pack_adapter(str(tmp_path / "sft"), str(tmp_path / "parts" / "sft"), part_mib=1)
    return str(tmp_path / "parts" / "sft")


def test_an_sft_adapter_from_another_transformers_version_is_restamped_but_not_one_for_other_weights(world, tmp_path):
    """The same base weights serialise to another config hash under another transformers version (GPU 5.17 vs CPU
    5.24): attaching re-stamps the hash when the weights probe matches, and refuses other weights."""
    from mdlm.adapt.rebuild import attach_sft_adapter

    d = world["dir"]
    base = rebuild(world["src"], None, str(d / "parts" / "adapt"), str(tmp_path / "r"), adapt_config=world["cfg"])["base"]
    other_config = _sft_parts_with_fingerprint(world, tmp_path / "a", lambda fp: fp.update(config_sha256="0" * 16))
    attach_sft_adapter(other_config, base, str(tmp_path / "attached"))
    tuned = load_adapter(AutoModelForMaskedLM.from_pretrained(base), str(tmp_path / "attached")).eval()
    with torch.no_grad():
        torch.testing.assert_close(tuned(input_ids=world["x"]).logits, world["logits"], atol=0.05, rtol=0.05)

    def other_weights(fp):
        name = sorted(fp["weights_probe"])[0]
        fp["weights_probe"][name] = [v + 1.0 for v in fp["weights_probe"][name]]
        fp["config_sha256"] = "0" * 16

    with pytest.raises(ValueError, match="another base"):
        attach_sft_adapter(_sft_parts_with_fingerprint(world, tmp_path / "b", other_weights), base,
                           str(tmp_path / "refused"))


def _cli(args, monkeypatch, capsys):
    sys.path.insert(0, os.path.join(ROOT, "recipes"))
    import rebuild_adapted

    monkeypatch.setattr(sys, "argv", ["rebuild_adapted.py", *args])
    with pytest.raises(SystemExit) as e:
        rebuild_adapted.main()
    return e.value.code, capsys.readouterr().err


def test_a_corrupted_part_is_one_error_line_and_writes_nothing(world, tmp_path, monkeypatch, capsys):
    d = world["dir"]
    bad = tmp_path / "parts"
    bad.mkdir()
    for f in os.listdir(d / "parts"):
        data = (d / "parts" / f).read_bytes()
        (bad / f).write_bytes(data[:-1] + bytes([data[-1] ^ 1]) if f == "sft.tar.part00" else data)
    args = ["--source", world["src"], "--adapt_parts", str(bad / "adapt"), "--adapt_config", world["cfg"],
            "--out", str(tmp_path / "r")]
    code, err = _cli(args + ["--sft_parts", str(bad / "sft")], monkeypatch, capsys)
    assert code == 2 and err.count("\n") == 1 and err.startswith("error:") and "SHA-256" in err
    assert not os.path.exists(tmp_path / "r" / "sft" / "adapter_model.safetensors")
    code, err = _cli(args[:-1] + [str(tmp_path / "r2"), "--sft_parts", str(bad / "nope")], monkeypatch, capsys)
    assert code == 2 and "nope.sha256 does not exist" in err and not os.path.exists(tmp_path / "r2")


@pytest.mark.slow
def test_lora_sft_under_zero3_on_cpu_saves_an_adapter_that_loads_without_deepspeed(world, tmp_path):
    pytest.importorskip("deepspeed", reason="DeepSpeed is not installed: pip install -e \".[dev]\"")
    out = rebuild(world["src"], None, str(world["dir"] / "parts" / "adapt"), str(tmp_path / "r"),
                  adapt_config=world["cfg"])
    rows = [{"prompt": f"w{i} w{i + 1}", "response": f"w{i + 2} w{i + 3} w{i + 4}"} for i in range(30)]
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    env = dict(os.environ, PYTHONPATH=ROOT, MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port()), RANK="0",
               LOCAL_RANK="0", WORLD_SIZE="1", LOCAL_WORLD_SIZE="1", DS_ACCELERATOR="cpu")
    args = ["--config", os.path.join(ROOT, "recipes/configs/sft_smollm2_tiny.yaml"), "--base_model", out["base"],
            "--data_files", str(data), "--max_length", "32", "--max_steps", "2", "--time_budget_s", "0",
            "--deepspeed", os.path.join(ROOT, "recipes/deepspeed/zero3.json"), "--output_dir", str(tmp_path / "sft")]
    r = subprocess.run([sys.executable, os.path.join(ROOT, "recipes/sft_lora.py"), *args], cwd=tmp_path,
                       capture_output=True, text=True, env=env, timeout=900, check=False)
    assert r.returncode == 0, r.stderr[-3000:]
    log = json.loads((tmp_path / "sft" / "train_log.json").read_text())
    assert [h["step"] for h in log if "loss" in h] == [1, 2] and all("tokens_per_s" in h for h in log if "loss" in h)
    tuned = load_adapter(AutoModelForMaskedLM.from_pretrained(out["base"]), str(tmp_path / "sft")).eval()
    with torch.no_grad():
        assert torch.isfinite(tuned(input_ids=world["x"]).logits).all()


def test_ar_source_chat_answers_are_the_same_batched_and_one_by_one():
    from test_adapt import tiny_lm

    from mdlm.adapt.ar_chat import ar_chat_answers

    tok = tiny_tokenizer()
    lm = tiny_lm("llama", len(tok)).eval()
    prompts = ["w1 w2", "w3", "w4 w5 w6 w7"]
    batched = ar_chat_answers(lm, tok, prompts, max_new_tokens=5, batch_size=3)
    assert batched == [ar_chat_answers(lm, tok, [p], max_new_tokens=5)[0] for p in prompts]
    assert all(len(a.split()) <= 5 and "<eos>" not in a for a in batched)  # ≤ 5 new tokens, specials dropped
    assert tok.padding_side == "right"  # the caller's tokenizer is left as it was
    tok.chat_template = None
    with pytest.raises(ValueError, match="no chat template"):
        ar_chat_answers(lm, tok, prompts, max_new_tokens=2)
