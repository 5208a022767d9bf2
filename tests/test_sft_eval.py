"""eval/sft_eval.py (mdlm/evaluation/sft.py) on a tiny base and a 2-step LoRA adapter: base and tuned are scored
on the same held-out rows with the same masks (the base's figure does not depend on which adapter it is compared
with), the report files are written, and a second run is refused without --overwrite."""

from __future__ import annotations

import json
import math

import pytest
import torch
from test_image_sample_eval import load_eval_script

from mdlm.cli import UserError
from mdlm.evaluation.ablation.recipe_runs import run_recipe
from mdlm.modeling import MDLMConfig, MDLMForMaskedLM
from mdlm.tokenizers.text import padded_vocab_size, train_bpe

ROWS = [{"prompt": f"Define {w}.", "response": f"a {w} is a small {w}"} for w in
        ("dog", "cat", "fox", "mat", "pet", "word", "sense", "tree")]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("sft_eval")
    tok = train_bpe([f"<|user|>\n{r['prompt']}\n<|assistant|>\n{r['response']}\n" for r in ROWS] * 8, vocab_size=300)
    torch.manual_seed(0)
    cfg = MDLMConfig(vocab_size=padded_vocab_size(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                     num_attention_heads=2, max_position_embeddings=64, mask_token_id=tok.mask_token_id,
                     pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
    MDLMForMaskedLM(cfg).save_pretrained(root / "base")
    tok.save_pretrained(root / "base")
    data = root / "rows.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    runs = {}
    for name, lr in (("adapter", "0.05"), ("other", "0.2")):
        out = root / name
        run_recipe("sft_lora", ["--base_model", str(root / "base"), "--data_files", str(data), "--output_dir", str(out),
                                "--max_length", "48", "--r", "4", "--alpha", "8", "--eval_fraction", "0.25",
                                "--per_device_train_batch_size", "4", "--learning_rate", lr, "--warmup_steps", "0",
                                "--logging_steps", "1", "--report_to", "none", "--use_cpu", "true", "--seed", "0",
                                "--dataloader_num_workers", "0", "--gen_length", "8", "--gen_block_length", "8",
                                "--max_steps", "2"], str(out), 2)
        runs[name] = out
    return root, data, runs


def _argv(root, data, adapter, out, *extra):
    return ["--base", str(root / "base"), "--adapter", str(adapter), "--out", str(out), "--eval-files", str(data),
            "--num-examples", "4", "--num-elbo", "6", "--elbo-samples", "2", "--show", "2", "--gen-length", "8",
            "--steps", "4", "--batch-size", "4", "--device", "cpu", *extra]


@pytest.mark.slow
def test_base_and_tuned_on_the_same_rows_and_masks(world, tmp_path):
    root, data, runs = world
    sft = load_eval_script("sft_eval")
    res = {}
    for name, adapter in runs.items():
        a = sft.parse_args(_argv(root, data, adapter, tmp_path / name))
        res[name] = sft.evaluate(a)
    one, other = res["adapter"], res["other"]
    assert one["base"]["elbo_nats_per_token"] == other["base"]["elbo_nats_per_token"]  # same rows, same masks
    assert one["tuned"]["elbo_nats_per_token"] != one["base"]["elbo_nats_per_token"]  # the adapter changed the model
    for r in (one, other):
        assert r["num_elbo"] == 6 and r["num_examples"] == 4 and len(r["examples"]) == 2 and r["elbo_tokens"] > 0
        assert all(math.isfinite(r[m]["elbo_nats_per_token"]) and r[m]["elbo_nats_per_token"] > 0
                   for m in ("base", "tuned"))
        assert r["tuned"]["format_share"]["n"] == 0  # rows without task/word: no format check, not a 0% share
    # the command line writes both report files, then refuses to replace them
    out = tmp_path / "cli"
    a = sft.parse_args(_argv(root, data, runs["adapter"], out))
    md = sft.sft_markdown(sft.evaluate(a))
    assert "| response ELBO (nats/token, lower is better) |" in md and "| 1 |" in md
    out.mkdir(parents=True, exist_ok=True)
    (out / "sft_eval.json").write_text("{}", encoding="utf-8")
    with pytest.raises(UserError, match="sft_eval.json exists; pass --overwrite"):
        sft.parse_args(_argv(root, data, runs["adapter"], out))
