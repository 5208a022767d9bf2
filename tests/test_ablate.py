"""eval/ablate.py end to end in micro form: a tiny trained checkpoint, a random-Llama judge, 2 sampling
settings and 2 training settings; the tables, plots and results.json hold the configured rows."""

from __future__ import annotations

import importlib.util
import io
import json
from contextlib import redirect_stdout
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
TRAIN = (
    "--dataset shakespeare --tokenizer bpe --bpe_vocab_size 300 --max_train_documents 20 --seq_len 32 "
    "--hidden_size 32 --num_hidden_layers 1 --num_attention_heads 2 --per_device_train_batch_size 8 "
    "--per_device_eval_batch_size 16 --max_eval_sequences 8 --eval_num_samples 1 --learning_rate 0.004 "
    "--warmup_steps 0 --logging_steps 1 --report_to none --use_cpu true --seed 0 --dataloader_num_workers 0"
)


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def ablate():
    return _load("ablate", ROOT / "eval" / "ablate.py")


def build_checkpoint_and_judge(d: Path) -> tuple[Path, Path]:
    """A 2-step text checkpoint (d/ckpt) and a random 1-layer Llama judge on its tokenizer (d/judge)."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    recipe = _load("train_text_for_ablate", ROOT / "recipes" / "train_text.py")
    with redirect_stdout(io.StringIO()):
        recipe.train(TRAIN.split() + ["--output_dir", str(d / "ckpt"), "--max_steps", "2", "--save_strategy", "no",
                                      "--sample_on_end", "0", "--disable_tqdm", "true"])
    tok = AutoTokenizer.from_pretrained(d / "ckpt")  # any tokenizer will do for a random judge
    torch.manual_seed(0)
    judge = LlamaForCausalLM(LlamaConfig(vocab_size=len(tok), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=64))
    judge.save_pretrained(d / "judge")
    tok.save_pretrained(d / "judge")
    return d / "ckpt", d / "judge"


@pytest.fixture(scope="module")
def checkpoint_and_judge(tmp_path_factory):
    return build_checkpoint_and_judge(tmp_path_factory.mktemp("abl"))


def test_micro_ablation_writes_tables_and_plots(ablate, checkpoint_and_judge, tmp_path):
    ckpt, judge = checkpoint_and_judge
    out = tmp_path / "abl"
    argv = ["--quick", "--out", str(out), "--model", str(ckpt), "--judge", str(judge), "--steps", "2", "4",
            "--schedules", "linear", "--strategies", "maskgit-confidence", "--num-samples", "2", "--gen-length", "8",
            "--reference-data", "none", "--train-schedules", "linear", "--train-weightings", "elbo", "maskgit",
            "--train-steps", "2", "--train-args", TRAIN]
    with redirect_stdout(io.StringIO()) as buf:
        res = ablate.run(ablate.parse_args(argv))
    assert "needs --image-model" in buf.getvalue()
    for f in ["sampling.md", "sampling.png", "training.md", "training.png", "results.json"]:
        assert (out / f).is_file() and (out / f).stat().st_size > 0, f
    assert not (out / "cfg.md").exists()
    samp = res["sampling"]["rows"]
    assert [(r["schedule"], r["strategy"], r["steps"]) for r in samp] == [("linear", "maskgit-confidence", 2),
                                                                           ("linear", "maskgit-confidence", 4)]
    assert all(r["genppl"] > 1 and r["judge_tokens"] > 0 and r["entropy_model"] >= 0 for r in samp)
    md = (out / "sampling.md").read_text()
    assert md.count("| linear | maskgit-confidence |") == 2
    train = res["training"]["rows"]
    assert [(r["schedule"], r["weighting"]) for r in train] == [("linear", "elbo"), ("linear", "maskgit")]
    assert all(r["val_nll"] > 0 and r["val_tokens"] == 8 * 32 for r in train)
    tmd = (out / "training.md").read_text()
    assert "| linear | elbo |" in tmd and "| linear | maskgit |" in tmd
    assert json.loads((out / "results.json").read_text())["training"]["rows"] == train
    # a non-empty output directory is never overwritten silently
    with pytest.raises(ValueError, match="not empty"):
        ablate.run(ablate.parse_args(argv))
