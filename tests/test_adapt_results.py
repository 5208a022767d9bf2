"""eval/adapt_results.py: the adaptation keys of docs/benchmarks/results.json come from the raw files in docs/."""

import os
import shutil
import subprocess
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
SCRIPT = os.path.join(ROOT, "eval", "adapt_results.py")
WSD = os.path.join(ROOT, "docs", "backbones", "h200_adapt_wsd")
COMPILED = os.path.join(ROOT, "docs", "backbones", "h200_adapt_wsd_compile")
COMPILED_CFG = "recipes/configs/adapt_smollm2_wsd_compile.yaml"


def _run(*args):
    return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True, cwd=ROOT)


def test_results_json_holds_the_compiled_wsd_runs_figures():
    r = _run("--wsd", COMPILED, "--config", COMPILED_CFG, "--date", "2026-12-01", "--check")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "the keys are current" in r.stdout


def test_the_compiled_run_keeps_the_first_wsd_run_and_its_own_extraction(tmp_path):
    """A later WSD run lists the first (eager) one under earlier_runs, and the extraction it returned (its own
    elbo_check.jsonl / extract_lora.json) becomes persisted_model; the first run, which returned none, keeps the long
    run's."""
    import json

    out = tmp_path / "r.json"
    assert _run("--wsd", COMPILED, "--config", COMPILED_CFG, "--date", "2026-12-01", "--out", str(out)).returncode == 0
    later = json.loads(out.read_text())["adapt_elbo_ppl_ratio"]
    assert later["earlier_runs"]["wsd_eager_batch64"]["value"] == 1.728
    assert later["persisted_model"]["source"].startswith("docs/backbones/h200_adapt_wsd_compile/")
    assert later["persisted_model"]["sha256"] == "docs/backbones/smollm2_mdm_wsd_r64.sha256"  # the renamed parts' manifest
    assert later["persisted_model"]["full_finetune_same_rows_and_masks"] < later["persisted_model"]["value"]
    out2 = tmp_path / "r2.json"
    assert _run("--wsd", WSD, "--date", "2026-12-01", "--out", str(out2)).returncode == 0
    first = json.loads(out2.read_text())["adapt_elbo_ppl_ratio"]
    assert "wsd_eager_batch64" not in first["earlier_runs"]
    assert first["persisted_model"]["sha256"] == "docs/backbones/smollm2_mdm_full_r64.sha256"


def test_a_run_log_without_a_decay_plan_is_one_error_line(tmp_path):
    for f in os.listdir(WSD):
        if f.startswith("call4_"):
            shutil.copy(os.path.join(WSD, f), tmp_path / f)
    log = tmp_path / "call4_run.log"
    log.write_text("".join(ln for ln in log.read_text().splitlines(keepends=True) if "decay plan" not in ln))
    r = _run("--wsd", str(tmp_path), "--config", "recipes/configs/adapt_smollm2_wsd.yaml", "--date", "2026-12-01",
             "--out", str(tmp_path / "results.json"))
    assert r.returncode != 0
    assert r.stderr.strip().splitlines()[-1].startswith("error:") and "decay plan" in r.stderr
    assert not (tmp_path / "results.json").exists()


def test_long_and_wsd_together_are_refused(tmp_path):
    r = _run("--wsd", WSD, "--long", WSD, "--date", "2026-12-01", "--out", str(tmp_path / "r.json"))
    assert r.returncode != 0 and "give one" in r.stderr


def test_a_later_wsd_run_without_its_config_is_one_error_line(tmp_path):
    """The config says how the run compiled and which command made it: a later run's keys need it."""
    r = _run("--wsd", COMPILED, "--date", "2026-12-01", "--out", str(tmp_path / "r.json"))
    assert r.returncode != 0 and "--config" in r.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "r.json").exists()
