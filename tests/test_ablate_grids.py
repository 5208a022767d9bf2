"""Every committed ablation result is reproducible from a grid file: each grid in eval/ablations/ that names a
result under docs/ablations/ ("Committed result: ...") has exactly the axes, sample sizes and training
arguments that made that result's rows."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

import pytest

from mdlm.evaluation.ablation.grid import load_grid

ROOT = Path(__file__).resolve().parents[1]
GRIDS = sorted((ROOT / "eval" / "ablations").glob("*.yaml"))


def committed_result(grid_path: Path) -> Path | None:
    m = re.search(r"Committed result: (docs/ablations/\S+?)/?\s", grid_path.read_text())
    return ROOT / m.group(1) / "results.json" if m else None


def uniq(rows, *keys):
    return [tuple(r[k] for k in keys) for r in rows]


@pytest.mark.parametrize("path", GRIDS, ids=lambda p: p.stem)
def test_grid_loads_and_matches_its_committed_result(path):
    grid = load_grid(str(path))
    res_path = committed_result(path)
    if res_path is None:
        return  # a grid without a committed result: loading it is the check
    res = json.loads(res_path.read_text())
    expected_parts = {"text_sampling": "sampling", "text_training": "training", "image_sampling": "image_sampling",
                      "guidance": "cfg", "image_training": "image_training"}
    assert {expected_parts[p] for p in grid.parts()} == set(res) & set(expected_parts.values())
    if grid.text_sampling is not None:
        t, r = grid.text_sampling, res["sampling"]
        rows = [x for x in r["rows"] if x["steps"]]
        assert uniq(rows, "schedule", "strategy", "steps") == list(itertools.product(t.schedules, t.strategies, t.steps))
        assert (r["num_samples"], r["gen_length"]) == (t.num_samples, t.gen_length)
        assert r["model"].endswith(t.model)
        refs = [x["strategy"] for x in r["rows"] if not x["steps"]]
        assert refs == ([f"reference ({t.reference_data} validation)"] if t.reference_data else [])
    if grid.text_training is not None:
        t, r = grid.text_training, res["training"]
        assert uniq(r["rows"], "schedule", "weighting", "t_min") == list(itertools.product(t.schedules, t.weightings, t.t_min))
        assert {x["steps"] for x in r["rows"]} == {t.max_steps}
        assert r["base_args"].split() == t.train_args.split()
    if grid.image_sampling is not None:
        t, r = grid.image_sampling, res["image_sampling"]
        assert uniq(r["rows"], "schedule", "strategy", "steps") == list(itertools.product(t.schedules, t.strategies, t.steps))
        assert r["num_per_class"] == grid.images.num_per_class and r["references"] == grid.images.references
    if grid.guidance is not None:
        t, r = grid.guidance, res["cfg"]
        names = ["none", "constant"] + [f"interval {lo:g}-{hi:g}" for lo, hi in t.intervals]
        assert uniq(r["rows"], "steps", "guidance") == [(s, n) for s in t.steps for n in names]
    if grid.image_training is not None:
        t, r = grid.image_training, res["image_training"]
        assert uniq(r["rows"], "schedule", "weighting", "t_min") == list(itertools.product(t.schedules, t.weightings, t.t_min))
        assert (r["max_steps"], r["eval_steps"], r["max_train_seconds"]) == (t.max_steps, t.eval_steps, t.max_seconds)
        assert r["num_per_class"] == grid.images.num_per_class and r["base_args"].split() == t.train_args.split()


def test_every_committed_result_has_a_grid():
    named = {committed_result(p) for p in GRIDS}
    results = set((ROOT / "docs" / "ablations").glob("**/results.json"))
    assert results <= named, sorted(str(p.relative_to(ROOT)) for p in results - named)
