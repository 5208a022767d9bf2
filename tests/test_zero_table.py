"""eval/zero_table.py: per-rank records of the ZeRO benchmark → the results.json entries the lead commits."""

import argparse
import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _table():
    spec = importlib.util.spec_from_file_location("zero_table", ROOT / "eval" / "zero_table.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _record(d: Path, rank: int, world: int, secs_per_step: float, losses=None):
    d.mkdir(parents=True, exist_ok=True)
    times = [[0, 0.0], [10, 50.0]] + [[10 * i, 50.0 + (i - 1) * 10 * secs_per_step] for i in range(2, 14)]
    rec = {"rank": rank, "world_size": world, "seq_len": 1024, "tokens_per_step": 16 * 1024, "log_times": times,
           "loss": losses or [], "peak_allocated": 30 * 1024**3, "peak_reserved": None, "device": "NVIDIA H200"}
    (d / f"rank{rank}.json").write_text(json.dumps(rec))


def test_scaling_entries_and_resume_delta(tmp_path):
    logs = tmp_path / "logs"
    _record(logs / "plain_1gpu", 0, 1, 0.16)
    _record(logs / "zero2_1gpu", 0, 1, 0.17)
    for r in (0, 1):
        _record(logs / "zero2_2gpu", r, 2, 0.168)
    (logs / "zero2_2gpu.smi").write_text("0, 40000\n1, 41000\n0, 42000\n")
    _record(logs / "zero3_ref", 0, 2, 0.2, [[s, 5.0 - 0.01 * s] for s in range(1, 21)])
    _record(logs / "resume_1gpu", 0, 1, 0.3, [[s, 5.0 - 0.01 * s + (0.002 if s == 15 else 0)] for s in range(11, 21)])
    res = _table().measure(argparse.Namespace(logs=str(logs), k=10, command="test"))["results_json"]
    z2 = res["zero2_scaling_2gpu"]
    assert z2["steps"] == 120  # the first logging interval (warm-up) is left out
    assert abs(z2["value"] - 2 * 0.16 / 0.168) < 1e-3 and abs(z2["tokens_per_s_per_gpu"] - 16384 / 0.168) < 1
    assert z2["nvidia_smi_peak_mib_per_gpu"] == {0: 42000, 1: 41000}
    assert "zero1_scaling_2gpu" not in res  # a run that left no record is missing, not invented
    (tmp_path / "z.json").write_text(json.dumps({"results_json": res}))
    assert _table().collect_figures(str(tmp_path / "z.json"), "docs/x.json")["zero2_scaling_2gpu"]["source"] == "docs/x.json"
    d = res["zero3_resume_1gpu_loss_delta"]
    assert abs(d["value"] - 0.002) < 1e-6 and d["steps"] == list(range(11, 21))
