"""The ablation runner end to end in micro form: a tiny trained checkpoint, a random-Llama judge, 2 sampling
settings and 2 training runs (each its own recipes/train_text.py process, as a user would run it); the tables,
plots and results.json hold the configured rows. Also the grid file's checks and the command line's
``--set`` / ``--only``."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout
from pathlib import Path

import pytest
import torch
import yaml
from test_image_sample_eval import load_eval_script

from mdlm.cli import UserError
from mdlm.evaluation.ablation.grid import grid_from_dict, load_grid
from mdlm.evaluation.ablation.recipe_runs import last_logged_loss, run_recipe
from mdlm.evaluation.ablation.runner import run_grid

TRAIN = (
    "--dataset shakespeare --tokenizer bpe --bpe_vocab_size 300 --max_train_documents 20 --seq_len 32 "
    "--hidden_size 32 --num_hidden_layers 1 --num_attention_heads 2 --per_device_train_batch_size 8 "
    "--per_device_eval_batch_size 16 --max_eval_sequences 8 --eval_num_samples 1 --learning_rate 0.004 "
    "--warmup_steps 0 --logging_steps 1 --report_to none --use_cpu true --seed 0 --dataloader_num_workers 0"
)


def build_checkpoint_and_judge(d: Path) -> tuple[Path, Path]:
    """A 2-step text checkpoint (d/ckpt) and a random 1-layer Llama judge on its tokenizer (d/judge)."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    run_recipe("train_text", TRAIN.split() + ["--output_dir", str(d / "ckpt"), "--max_steps", "2"], str(d / "ckpt"), 2)
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


def text_grid(ckpt, judge, **sampling) -> dict:
    return {"seed": 0,
            "text_sampling": {"model": str(ckpt), "judge": str(judge), "steps": [2, 4], "schedules": ["linear"],
                              "strategies": ["maskgit-confidence"], "num_samples": 2, "gen_length": 8,
                              "reference_data": None, **sampling},
            "text_training": {"schedules": ["linear"], "weightings": ["elbo", "maskgit"], "t_min": [0.001],
                              "max_steps": 2, "train_args": TRAIN}}


@pytest.mark.slow
def test_micro_ablation_writes_tables_and_plots(checkpoint_and_judge, tmp_path):
    ckpt, judge = checkpoint_and_judge
    out = tmp_path / "abl"
    grid = grid_from_dict(text_grid(ckpt, judge))
    with redirect_stdout(io.StringIO()):
        res = run_grid(grid, str(out), device="cpu")
    for f in ["sampling.md", "sampling.png", "training.md", "training.png", "results.json"]:
        assert (out / f).is_file() and (out / f).stat().st_size > 0, f
    assert not (out / "cfg.md").exists()
    samp = res["sampling"]["rows"]
    assert [(r["schedule"], r["strategy"], r["steps"]) for r in samp] == [("linear", "maskgit-confidence", 2),
                                                                           ("linear", "maskgit-confidence", 4)]
    assert all(r["genppl"] > 1 and r["judge_tokens"] > 0 and r["entropy_model"] >= 0 for r in samp)
    assert (out / "sampling.md").read_text().count("| linear | maskgit-confidence |") == 2
    train = res["training"]["rows"]
    assert [(r["schedule"], r["weighting"]) for r in train] == [("linear", "elbo"), ("linear", "maskgit")]
    assert all(r["val_nll"] > 0 and r["val_tokens"] == 8 * 32 for r in train)
    assert all(isinstance(r["final_train_loss"], float) and r["final_train_loss"] > 0 for r in train)  # read from its log
    tmd = (out / "training.md").read_text()
    assert "| linear | elbo |" in tmd and "| linear | maskgit |" in tmd
    assert json.loads((out / "results.json").read_text())["training"]["rows"] == train
    # a non-empty output directory is never overwritten silently
    with pytest.raises(UserError, match="not empty; pass --overwrite"):
        run_grid(grid, str(out), device="cpu")


def test_grid_file_errors_name_the_file_and_key(tmp_path):
    path = tmp_path / "g.yaml"
    good = {"text_training": {"schedules": ["linear"], "weightings": ["elbo"], "t_min": [0.001], "max_steps": 2,
                              "train_args": TRAIN}}
    cases = [
        ({"text_trainng": {}}, "unknown part.*text_trainng"),
        ({"text_training": {**good["text_training"], "max_step": 3}}, "text_training: unknown key.*max_step"),
        ({"text_training": {**good["text_training"], "max_steps": "many"}}, "text_training.max_steps: expected int"),
        ({"text_training": {**good["text_training"], "max_steps": 0}}, "max_steps: every value must be ≥ 1"),
        ({"text_training": {**good["text_training"], "schedules": []}}, "schedules: expected a non-empty list"),
        ({"text_training": {**good["text_training"], "schedules": ["bogus"]}}, "unknown schedule"),
        ({"image_sampling": {"steps": [1], "schedules": ["cosine"], "strategies": ["moment"]}}, "need an images section"),
        ({"seed": 0}, "names no part to run"),
    ]
    for raw, match in cases:
        path.write_text(yaml.safe_dump(raw))
        with pytest.raises(UserError, match=match):
            load_grid(str(path))
    path.write_text(yaml.safe_dump(good))
    g = load_grid(str(path), ["text_training.max_steps=7", "text_training.t_min=[0.1, 0.2]", "seed=3"])
    assert g.text_training.max_steps == 7 and g.text_training.t_min == [0.1, 0.2] and g.seed == 3
    with pytest.raises(UserError, match="no text_sampling section"):
        load_grid(str(path), ["text_sampling.steps=[4]"])
    with pytest.raises(UserError, match="expected PART.KEY=VALUE"):
        load_grid(str(path), ["text_training.max_steps"])


def test_command_line_only_and_usage_errors(tmp_path):
    ckpt, judge = tmp_path / "ckpt", tmp_path / "judge"  # not read: the grid's paths are checked when it runs
    ablate = load_eval_script("ablate")
    path = tmp_path / "g.yaml"
    path.write_text(yaml.safe_dump(text_grid(ckpt, judge)))
    a = ablate.parse_args([str(path), "--out", str(tmp_path / "o"), "--only", "text_sampling",
                           "--set", "text_sampling.steps=[3]"])
    grid = ablate.load(a)
    assert grid.parts() == ["text_sampling"] and grid.text_sampling.steps == [3]
    with pytest.raises(UserError, match="--only text_training_x: not a part"):
        ablate.load(ablate.parse_args([str(path), "--out", "o", "--only", "text_training_x"]))
    for argv, match in [([str(path)], "needs --out"), ([], "give one of"),
                        (["--replot", "x", "--judge", "j"], "--judge and --rescore go with --score-samples")]:
        with pytest.raises(UserError, match=match):
            ablate.parse_args(argv)


def test_last_logged_loss_reads_the_trainer_log_lines():
    log = "model: 0.1M\n{'loss': '5.4', 'grad_norm': '1.2', 'epoch': '0.5'}\n{'loss': 4.25, 'epoch': 1.0}\n" \
          "{'train_runtime': '1.0', 'train_loss': '4.8'}\nvalidation ELBO: 4.3 nats/token\n"
    assert last_logged_loss(log) == 4.25
    assert last_logged_loss("no log lines") is None
