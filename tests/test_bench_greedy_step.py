"""eval/bench_greedy_step.py and eval/bench_advance.py on a CPU (smoke runs: PyTorch ops only, no CUDA graphs),
their input checks, and bench_sampler.py's output and kernel checks."""

from __future__ import annotations

import json
import subprocess
import sys


def test_bench_greedy_step_writes_a_timed_row_per_batch_and_rule(tmp_path):
    out = tmp_path / "step.json"
    subprocess.run([sys.executable, "eval/bench_greedy_step.py", "--device", "cpu", "--replays", "1", "--vocab", "300",
                    "--batch", "1", "2", "--no-compile", "--out", str(out)], check=True, capture_output=True)
    rows = json.loads(out.read_text())["rows"]
    assert {(r["batch"], r["rule"]) for r in rows} == {(b, rule) for b in (1, 2)
                                                        for rule in ("schedule", "fast_dllm 0.9", "eb 0.1")}
    assert all(r["us_per_step"] > 0 and r["row_stats"] == "torch" and not r["compiled"] for r in rows)


def test_bench_greedy_step_refuses_a_vocabulary_without_room_for_mask():
    r = subprocess.run([sys.executable, "eval/bench_greedy_step.py", "--device", "cpu", "--vocab", "300",
                        "--valid", "299"], capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.strip().startswith("error: --valid must leave room")


def test_the_benchmarks_never_replace_an_output_without_overwrite(tmp_path):
    out = tmp_path / "step.json"
    out.write_text("keep me")
    r = subprocess.run([sys.executable, "eval/bench_greedy_step.py", "--device", "cpu", "--vocab", "300",
                        "--out", str(out)], capture_output=True, text=True)
    assert r.returncode == 2 and "exists; pass --overwrite" in r.stderr and out.read_text() == "keep me"
    r = subprocess.run([sys.executable, "eval/bench_sampler.py", "--random-size", "tiny", "--device", "cpu",
                        "--out", str(out)], capture_output=True, text=True)
    assert r.returncode == 2 and "exists; pass --overwrite" in r.stderr and out.read_text() == "keep me"


def test_bench_sampler_refuses_the_kernel_on_a_cpu_in_one_line():
    r = subprocess.run([sys.executable, "eval/bench_sampler.py", "--random-size", "tiny", "--device", "cpu",
                        "--row-stats", "triton"], capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.strip().startswith("error: --row-stats triton needs a CUDA")
    assert "Traceback" not in r.stderr


def test_bench_advance_writes_a_row_per_batch_and_keeps_an_existing_output(tmp_path):
    """eval/bench_advance.py on a CPU: the PyTorch advance timed eagerly per batch size; no overwrite without asking."""
    out = tmp_path / "advance.json"
    subprocess.run([sys.executable, "eval/bench_advance.py", "--device", "cpu", "--replays", "2", "--blocks", "4",
                    "--batch", "1", "3", "--out", str(out)], check=True, capture_output=True)
    rows = json.loads(out.read_text())["rows"]
    assert [(r["batch"], r["impl"]) for r in rows] == [(1, "torch"), (3, "torch")]
    assert all(r["us_per_step"] > 0 and r["kernels"] is None and not r["graphed"] for r in rows)  # CPU: not counted
    before = out.read_text()
    r = subprocess.run([sys.executable, "eval/bench_advance.py", "--device", "cpu", "--out", str(out)],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "exists; pass --overwrite" in r.stderr and out.read_text() == before


def test_bench_advance_refuses_a_cuda_device_that_is_not_there_in_one_line():
    import pytest
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is here")
    r = subprocess.run([sys.executable, "eval/bench_advance.py", "--device", "cuda"], capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.strip() == ("error: --device cuda: no CUDA device here (use --device cpu "
                                                      "for a smoke run)")
