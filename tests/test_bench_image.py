"""eval/bench_image.py on a random 8×8 image checkpoint (CPU, seconds): NFE per image of the three guidance
settings, the JSON's meta, the table, and refusing to overwrite."""

from __future__ import annotations

import json

import pytest
from test_image_sample_eval import load_eval_script, make_image_checkpoint


@pytest.fixture(scope="module")
def bench():
    return load_eval_script("bench_image")


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return make_image_checkpoint(tmp_path_factory.mktemp("bench") / "ckpt", cfg_scale=1.5)


def test_nfe_off_interval_constant_and_json(bench, ckpt, tmp_path, capsys):
    out = tmp_path / "b.json"
    res = bench.main(["--model", str(ckpt), "--steps", "4", "8", "--batch", "12", "--repeats", "2",
                      "--cfg-interval", "0", "0.5", "--device", "cpu", "--out", str(out)])
    printed = capsys.readouterr().out
    assert "| CFG | steps | NFE/image |" in printed and "images/s" in printed
    rows = {(r["cfg"], r["steps"]): r for r in res["rows"]}
    assert set(rows) == {(c, s) for c in ("off", "constant", "interval") for s in (4, 8)}
    for s in (4, 8):
        off, const, inter = rows["off", s], rows["constant", s], rows["interval", s]
        assert off["nfe_per_image"] == s and const["nfe_per_image"] == 2 * s
        assert off["nfe_per_image"] < inter["nfe_per_image"] < const["nfe_per_image"]  # guided on part of the steps
        assert const["cfg_scale"] == 1.5 and off["cfg_scale"] == 0.0  # the checkpoint's scale by default
        for r in (off, const, inter):
            assert len(r["seconds_all"]) == 2 and r["images_per_s"] > 0 and r["batch"] == 12
    meta = json.loads(out.read_text())["meta"]
    for k in ("device", "torch", "transformers", "date", "command", "dtype", "parameters"):
        assert meta[k], k
    assert meta["device"] == "cpu" and meta["command"].startswith("python eval/bench_image.py --model")
    with pytest.raises(ValueError, match="--overwrite"):  # an existing --out needs --overwrite
        bench.parse_args(["--model", str(ckpt), "--out", str(out)])


def test_missing_model_is_one_clear_error(bench, tmp_path):
    with pytest.raises(ValueError, match="is not a directory"):
        bench.main(["--model", str(tmp_path / "nope"), "--steps", "1", "--batch", "2", "--repeats", "1"])
