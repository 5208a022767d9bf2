"""eval/bench_partial_cache.py on a random 8×8 image checkpoint (CPU, seconds): the four runs per step
count, their costs (sub-steps multiply the NFE, partial caching computes fewer positions), the agreement
column, the JSON, and refusing to overwrite."""

from __future__ import annotations

import json

import pytest
from test_image_sample_eval import (
    load_eval_script,
    make_classifier,
    make_image_checkpoint,
)


@pytest.mark.requires("sklearn")  # scikit-learn's digits
def test_runs_costs_and_json(tmp_path, capsys):
    bench = load_eval_script("bench_partial_cache")
    ckpt, clf = make_image_checkpoint(tmp_path / "ckpt"), make_classifier(tmp_path / "clf")
    out = tmp_path / "p.json"
    rows = bench.main(["--model", str(ckpt), "--classifier", str(clf), "--dataset", "digits", "--steps", "2",
                      "--substeps", "3", "--num-per-class", "2", "--max-reference", "60", "--device", "cpu",
                      "--out", str(out)])
    assert "| steps | run | NFE |" in capsys.readouterr().out
    one, exact, part, long = rows
    assert [r["run"] for r in rows] == ["substeps 1", "substeps 3 exact", "substeps 3 partial cache",
                                        "substeps 1 at 6 steps"]
    assert exact["nfe"] > one["nfe"] and part["nfe"] == exact["nfe"]
    assert part["positions_per_image"] < exact["positions_per_image"]
    assert 0.0 <= part["tokens_equal_to_exact"] <= 1.0
    assert json.loads(out.read_text())["meta"]["command"].startswith("python eval/bench_partial_cache.py")
    with pytest.raises(SystemExit):
        bench.parse_args(["--model", str(ckpt), "--classifier", str(clf), "--out", str(out)])
