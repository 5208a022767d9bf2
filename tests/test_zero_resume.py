"""A ZeRO-3 checkpoint written by 2 processes (DeepSpeed's CPU accelerator, gloo) resumes in ONE process
without DeepSpeed through recipes/consolidate_zero.py, and continues the 2-process loss curve (same global
batch: gradient accumulation 2; the masking RNG is indexed by the global micro-batch)."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("deepspeed", reason="DeepSpeed is not installed: pip install -e \".[dev]\"")
ROOT = Path(__file__).resolve().parents[1]
from ports import free_port
from test_training import TINY

ARGS = [a if a != "16" else "8" for a in TINY] + ["--save_steps", "3", "--max_steps", "6"]  # batch 8 per rank
TOL = 1e-4  # |Δ loss| after the resume (measured 5e-7: fp32 on the CPU; 2 ranks vs 2 micro-batches sum in another order)


def _env(**kw):
    return dict(os.environ, PYTHONPATH=str(ROOT), DS_ACCELERATOR="cpu", OMP_NUM_THREADS="1", **kw)


def _losses(run: Path, step: int) -> dict[int, float]:
    state = json.loads((run / f"checkpoint-{step}" / "trainer_state.json").read_text())
    return {h["step"]: h["loss"] for h in state["log_history"] if "loss" in h}


@pytest.fixture(scope="module")
def zero3_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("zero3")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(free_port()),
           str(ROOT / "recipes" / "train_text.py"), *ARGS, "--output_dir", str(tmp / "z3"),
           "--deepspeed", str(ROOT / "recipes/deepspeed/zero3.json")]
    r = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, env=_env(), timeout=900, check=False)
    assert r.returncode == 0, r.stderr[-3000:]
    return tmp


def _consolidate(ckpt, out, cwd):
    return subprocess.run([sys.executable, str(ROOT / "recipes" / "consolidate_zero.py"), str(ckpt), "--out", str(out)],
                          cwd=cwd, capture_output=True, text=True, env=_env(), timeout=300, check=False)


@pytest.mark.slow
def test_zero3_two_ranks_resume_in_one_process_without_deepspeed(zero3_run):
    tmp = zero3_run
    r = _consolidate(tmp / "z3" / "checkpoint-3", tmp / "one", tmp)
    assert r.returncode == 0, r.stderr[-3000:]
    assert {"model.safetensors", "optimizer.pt", "scheduler.pt", "trainer_state.json"} <= {
        p.name for p in (tmp / "one" / "checkpoint-3").iterdir()}
    # every Adam moment has its parameter's shape (ZeRO-3 stores them flat; a CUDA fused AdamW refuses that)
    import torch
    from safetensors.torch import load_file

    from mdlm.training.zero_resume import trainer_param_groups
    from mdlm.modeling import MDLMConfig, MDLMForMaskedLM

    model = MDLMForMaskedLM(MDLMConfig.from_pretrained(tmp / "one" / "checkpoint-3"))
    names = [n for g in trainer_param_groups(model) for n in g]
    shapes = dict((n, p.shape) for n, p in model.named_parameters())
    opt = torch.load(tmp / "one" / "checkpoint-3" / "optimizer.pt", weights_only=True)
    assert [opt["state"][i]["exp_avg"].shape for i in range(len(names))] == [shapes[n] for n in names]
    weights = load_file(tmp / "one" / "checkpoint-3" / "model.safetensors")
    assert all(weights[n].shape == shapes[n] for n in names)
    r = subprocess.run([sys.executable, str(ROOT / "recipes" / "train_text.py"), *ARGS, "--output_dir", str(tmp / "one"),
                        "--resume_from_checkpoint", "auto", "--gradient_accumulation_steps", "2"],
                       cwd=tmp, capture_output=True, text=True, env=_env(), timeout=600, check=False)
    assert r.returncode == 0, r.stderr[-3000:]
    ref, got = _losses(tmp / "z3", 6), _losses(tmp / "one", 6)
    assert sorted(got) == [4, 5, 6] or sorted(got) == [1, 2, 3, 4, 5, 6], got
    delta = max(abs(got[s] - ref[s]) for s in (4, 5, 6))
    assert delta < TOL, (ref, got)


def _consolidate_cli(monkeypatch, capsys, *argv) -> tuple[int, str]:
    spec = importlib.util.spec_from_file_location("consolidate_zero", ROOT / "recipes" / "consolidate_zero.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    monkeypatch.setattr(sys, "argv", ["consolidate_zero.py", *map(str, argv)])
    with pytest.raises(SystemExit) as e:
        mod.main()
    return e.value.code, capsys.readouterr().err


def test_consolidate_refuses_bad_input_and_existing_out(tmp_path, monkeypatch, capsys):
    plain = tmp_path / "run" / "checkpoint-3"  # a checkpoint written without DeepSpeed: nothing to consolidate
    plain.mkdir(parents=True)
    (plain / "trainer_state.json").write_text("{}")
    code, err = _consolidate_cli(monkeypatch, capsys, plain, "--out", tmp_path / "x")
    assert code == 2 and err.startswith("error: ") and "not a DeepSpeed checkpoint" in err
    assert not (tmp_path / "x").exists()
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "keep.txt").write_text("mine")
    code, err = _consolidate_cli(monkeypatch, capsys, plain, "--out", tmp_path / "taken")
    assert code == 2 and err.startswith("error: ") and "exists" in err
    assert (tmp_path / "taken" / "keep.txt").read_text() == "mine"
