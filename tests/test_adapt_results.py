"""eval/adapt_results.py: the adaptation keys of docs/benchmarks/results.json come from the raw files in docs/."""

import os
import shutil
import subprocess
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
SCRIPT = os.path.join(ROOT, "eval", "adapt_results.py")
WSD = os.path.join(ROOT, "docs", "backbones", "h200_adapt_wsd")


def _run(*args):
    return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True, cwd=ROOT)


def test_results_json_holds_the_wsd_runs_figures():
    r = _run("--wsd", WSD, "--date", "2026-12-01", "--check")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "the keys are current" in r.stdout


def test_a_run_log_without_a_decay_plan_is_one_error_line(tmp_path):
    for f in os.listdir(WSD):
        if f.startswith("call4_"):
            shutil.copy(os.path.join(WSD, f), tmp_path / f)
    log = tmp_path / "call4_run.log"
    log.write_text("".join(ln for ln in log.read_text().splitlines(keepends=True) if "decay plan" not in ln))
    r = _run("--wsd", str(tmp_path), "--date", "2026-12-01", "--out", str(tmp_path / "results.json"))
    assert r.returncode != 0
    assert r.stderr.strip().splitlines()[-1].startswith("error:") and "decay plan" in r.stderr
    assert not (tmp_path / "results.json").exists()


def test_long_and_wsd_together_are_refused(tmp_path):
    r = _run("--wsd", WSD, "--long", WSD, "--date", "2026-12-01", "--out", str(tmp_path / "r.json"))
    assert r.returncode != 0 and "give one" in r.stderr
