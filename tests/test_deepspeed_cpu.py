"""DeepSpeed ZeRO-2 through the same recipe on CPU (DeepSpeed's CPU accelerator, one process):
trains a few steps, saves, and resumes from its own ZeRO checkpoint."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("deepspeed", reason="DeepSpeed is not installed: pip install -e \".[dev]\"")
ROOT = Path(__file__).resolve().parents[1]
from ports import free_port  # noqa: E402
from test_training import TINY  # noqa: E402


def _run(args, tmp_path, port):
    env = dict(os.environ, PYTHONPATH=str(ROOT), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK="0",
               LOCAL_RANK="0", WORLD_SIZE="1", LOCAL_WORLD_SIZE="1", DS_ACCELERATOR="cpu")
    return subprocess.run([sys.executable, str(ROOT / "recipes" / "train_text.py"), *args], cwd=tmp_path,
                          capture_output=True, text=True, env=env, timeout=1500)


def test_zero2_trains_saves_and_resumes(tmp_path):
    out = tmp_path / "ds"
    base = TINY + ["--output_dir", str(out), "--deepspeed", str(ROOT / "recipes/deepspeed/zero2.json"),
                   "--save_steps", "3"]
    r = _run(base + ["--max_steps", "3"], tmp_path, free_port())
    assert r.returncode == 0, r.stderr[-3000:]
    ckpt = out / "checkpoint-3"
    assert (ckpt / "latest").exists() and any(p.name.startswith("global_step") for p in ckpt.iterdir())
    r = _run(base + ["--max_steps", "6", "--resume_from_checkpoint", "auto"], tmp_path, free_port())
    assert r.returncode == 0, r.stderr[-3000:]
    state = json.loads((out / "checkpoint-6" / "trainer_state.json").read_text())
    steps = [h["step"] for h in state["log_history"] if "loss" in h]
    assert steps[-1] == 6 and 4 in steps
    assert (out / "model.safetensors").exists()
    assert json.loads((out / "eval_metrics.json").read_text())["eval_nll"] < 6.0
