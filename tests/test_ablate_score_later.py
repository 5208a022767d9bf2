"""The ablation runner's two-phase text sampling: ``judge: none`` keeps every row's samples unscored (no judge
loaded), ``--score-samples OUT`` scores them later with the same numbers as scoring in-process; a directory
without results.json is one clear error. Same tiny checkpoint and random-Llama judge as tests/test_ablate.py."""

from __future__ import annotations

import io
import json
import sys
from contextlib import redirect_stdout

import pytest

from test_ablate import build_checkpoint_and_judge
from test_image_sample_eval import load_eval_script

from mdlm.evaluation.ablation import runner
from mdlm.evaluation.ablation.grid import grid_from_dict

pytestmark = pytest.mark.usefixtures("one_thread")

JUDGE_METRICS = ("genppl", "genppl_sample_mean", "entropy_judge", "judge_tokens")
SAME = ("schedule", "strategy", "steps", "nfe", "entropy_model", "example", *JUDGE_METRICS)


@pytest.fixture(scope="module")
def checkpoint_and_judge(tmp_path_factory):
    return build_checkpoint_and_judge(tmp_path_factory.mktemp("abl_later"))


def _run(out, ckpt, judge: str) -> dict:
    # 3 samples in batches of 2: two sampling seeds and a padded judge batch; the reference row too
    grid = grid_from_dict({"text_sampling": {
        "model": str(ckpt), "judge": judge, "steps": [2], "schedules": ["linear"],
        "strategies": ["maskgit-confidence", "maskgit-random"], "num_samples": 3, "gen_length": 8, "batch_size": 2,
        "reference_data": "shakespeare"}})
    return runner.run_grid(grid, str(out), device="cpu")


def _no_judge(*args, **kwargs):
    raise AssertionError("a judge was loaded")


@pytest.mark.slow
def test_judge_none_then_score_samples_matches_in_process(checkpoint_and_judge, tmp_path, monkeypatch):
    import mdlm.evaluation.genppl as genppl

    ckpt, judge = checkpoint_and_judge
    # (a) --judge none: samples kept, judge metrics None, no judge loaded
    later = tmp_path / "later"
    with monkeypatch.context() as m, redirect_stdout(io.StringIO()):
        m.setattr(genppl, "load_judge", _no_judge)
        res = _run(later, ckpt, "none")
    rows = res["sampling"]["rows"]
    assert res["sampling"]["judge"] is None
    assert [r["samples_file"] for r in rows] == ["text_samples/reference.jsonl",
                                                 "text_samples/linear_maskgit-confidence_2.jsonl",
                                                 "text_samples/linear_maskgit-random_2.jsonl"]
    for r in rows:
        assert all(r[k] is None for k in (*JUDGE_METRICS, "score_s")) and r["entropy_model"] > 0
        samples = [json.loads(line) for line in (later / r["samples_file"]).read_text().splitlines()]
        assert len(samples) == 3 and all(isinstance(x["text"], str) and x["ids"] for x in samples)
        if r["steps"]:
            assert r["nfe"] > 0 and r["example"] == samples[0]["text"][:200]
    md = (later / "sampling.md").read_text()
    assert f"| linear | maskgit-confidence | 2 | {rows[1]['nfe']} | - | - | {rows[1]['entropy_model']:.3f} | - |" in md
    assert "3 row(s) not scored yet" in md
    assert (later / "sampling.png").is_file()

    # (b) scoring later = scoring in-process, same seed and settings
    now = tmp_path / "now"
    with redirect_stdout(io.StringIO()):
        scored = runner.score_samples(str(later), str(judge))["sampling"]
        direct = _run(now, ckpt, str(judge))["sampling"]
    assert [[r.get(k) for k in SAME] for r in scored["rows"]] == [[r.get(k) for k in SAME] for r in direct["rows"]]
    assert all(r["genppl"] > 1 and r["judge_tokens"] > 0 for r in scored["rows"])
    assert scored["judge"] == direct["judge"] == str(judge)
    on_disk = json.loads((later / "results.json").read_text())["sampling"]
    assert [r["genppl"] for r in on_disk["rows"]] == [r["genppl"] for r in direct["rows"]]
    md = (later / "sampling.md").read_text()
    assert "--score-samples" not in md and f"{direct['rows'][1]['genppl']:.2f}" in md

    # rows already scored are left as they are (no judge loaded); a missing samples file is one clear error
    with monkeypatch.context() as m, redirect_stdout(io.StringIO()):
        m.setattr(genppl, "load_judge", _no_judge)
        again = runner.score_samples(str(later), str(judge))["sampling"]
    assert [r["score_s"] for r in again["rows"]] == [r["score_s"] for r in scored["rows"]]
    (later / "text_samples" / "linear_maskgit-random_2.jsonl").unlink()
    with pytest.raises(ValueError, match="samples file.*missing: text_samples/linear_maskgit-random_2.jsonl"):
        runner.score_samples(str(later), str(judge), rescore=True)


def test_score_samples_without_results_is_one_error(tmp_path, monkeypatch, capsys):
    # (c) the CLI: exit status 2 and one line naming the directory
    ablate = load_eval_script("ablate")
    monkeypatch.setattr(sys, "argv", ["ablate.py", "--score-samples", str(tmp_path)])
    with pytest.raises(SystemExit) as e:
        ablate.main()
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: --score-samples {tmp_path}: no results.json there"
    (tmp_path / "results.json").write_text(json.dumps({"training": {"rows": []}}))
    with pytest.raises(ValueError, match="no text sampling rows"):
        runner.score_samples(str(tmp_path))


@pytest.mark.slow
def test_interrupted_scoring_keeps_finished_rows(checkpoint_and_judge, tmp_path, monkeypatch):
    from mdlm.evaluation.ablation import text_sampling  # score_sampling scores through its score_texts

    ckpt, judge = checkpoint_and_judge
    out = tmp_path / "cut"
    with redirect_stdout(io.StringIO()):
        _run(out, ckpt, "none")
    calls = {"n": 0}
    orig = text_sampling.score_texts

    def stop_after_one(*args, **kwargs):
        if calls["n"] == 1:
            raise KeyboardInterrupt  # the run is cut while scoring its second row
        calls["n"] += 1
        return orig(*args, **kwargs)

    with monkeypatch.context() as m, pytest.raises(KeyboardInterrupt), redirect_stdout(io.StringIO()):
        m.setattr(text_sampling, "score_texts", stop_after_one)
        runner.score_samples(str(out), str(judge))
    on_disk = json.loads((out / "results.json").read_text())["sampling"]["rows"]
    assert [r["genppl"] is not None for r in on_disk] == [True, False, False]
    with redirect_stdout(io.StringIO()):
        done = runner.score_samples(str(out), str(judge))["sampling"]["rows"]
    assert all(r["genppl"] is not None for r in done)
    assert done[0]["genppl"] == on_disk[0]["genppl"]  # the finished row was kept, not rescored
