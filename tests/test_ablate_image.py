"""eval/ablate.py's image parts in micro form (CPU, seconds): the sampling grid, the CFG table with NFE per
image and the training grid (2 runs of recipes/train_image.py on digits), on a random 8×8 checkpoint and a
random classifier; a failed training run is a row, not a crash; input errors are one line."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout
from pathlib import Path

import pytest
from test_image_sample_eval import load_eval_module, make_classifier, make_image_checkpoint

from mdlm.cli import UserError

TRAIN = (
    "--dataset digits --hidden_size 32 --num_hidden_layers 1 --num_attention_heads 2 --per_device_train_batch_size 32 "
    "--per_device_eval_batch_size 128 --max_eval_samples 128 --eval_num_samples 1 --learning_rate 0.003 "
    "--logging_steps 1 --report_to none --use_cpu true --seed 0 --dataloader_num_workers 0"
)
IMAGE_ARGS = "--dataset digits --max-reference 60 --batch-size 64"


@pytest.fixture(scope="module")
def ablate():
    return load_eval_module("ablate")


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    d = tmp_path_factory.mktemp("abl_img")
    return make_image_checkpoint(d / "ckpt"), make_classifier(d / "clf"), d


def _argv(out: Path, ckpt: Path, clf: Path, *extra: str) -> list[str]:
    return ["--out", str(out), "--skip-sampling", "--skip-training", "--image-model", str(ckpt), "--classifier",
            str(clf), "--image-args", IMAGE_ARGS, "--num-per-class", "3", *extra]


@pytest.mark.requires("sklearn")  # scikit-learn's digits
def test_image_grid_cfg_table_and_training_grid(ablate, assets, tmp_path):
    ckpt, clf, d = assets
    out = tmp_path / "abl"
    argv = _argv(out, ckpt, clf, "--image-grid-steps", "1", "2", "--image-grid-schedules", "linear",
                 "--image-grid-strategies", "maskgit-confidence", "moment", "--image-steps", "4", "8",
                 "--cfg-intervals", "0", "0.5", "--image-train", "--image-train-schedules", "exp",
                 "--image-train-weightings", "elbo", "maskgit", "--image-train-t-min", "0.2", "--image-train-steps", "2",
                 "--image-train-eval-steps", "2", "--image-train-args", f"{TRAIN} --cache_dir {d / 'cache'}")
    with redirect_stdout(io.StringIO()):
        res = ablate.run(ablate.parse_args(argv))
    for f in ["image_sampling.md", "image_sampling.png", "cfg.md", "cfg.png", "image_training.md",
              "image_training.png", "results.json"]:
        assert (out / f).is_file() and (out / f).stat().st_size > 0, f
    assert not (out / "sampling.md").exists() and not (out / "training.md").exists()

    grid = res["image_sampling"]
    assert [(r["schedule"], r["strategy"], r["steps"]) for r in grid["rows"]] == [
        ("linear", s, n) for s in ("maskgit-confidence", "moment") for n in (1, 2)]
    assert grid["base_sampler"]["cfg_scale"] == 1.0 and grid["references"] == ["recon", "test"]
    for r in grid["rows"]:
        assert r["nfe"] == 2 * r["steps"]  # the checkpoint's CFG on every step, in every row
        assert r["sampler"]["schedule"] == "linear" and r["n_images"] == 30
        assert all(v >= 0 for v in r["classifier_fid_by_reference"].values())
    assert [r["sampler"]["sampler"] for r in grid["rows"]] == ["maskgit", "maskgit", "moment", "moment"]
    md = (out / "image_sampling.md").read_text()
    assert "classifier-free guidance ℓ = c + 1·(c − u) on every step" in md and "| FID vs recon | FID vs test |" in md

    cfg = {(r["guidance"], r["steps"]): r for r in res["cfg"]["rows"]}
    assert set(cfg) == {(g, s) for g in ("none", "constant", "interval 0-0.5") for s in (4, 8)}
    for s in (4, 8):
        assert cfg["none", s]["nfe"] == s < cfg["interval 0-0.5", s]["nfe"] < cfg["constant", s]["nfe"] == 2 * s
    assert "NFE/image" in (out / "cfg.md").read_text()

    train = res["image_training"]["rows"]
    assert [(r["schedule"], r["weighting"], r["t_min"]) for r in train] == [("exp", "elbo", 0.2), ("exp", "maskgit", 0.2)]
    for r in train:
        assert "error" not in r and r["steps"] == 2 and r["val_nll"] > 0 and r["val_tokens"] == 128 * 16
        assert [x["steps"] for x in r["samples"]] == [2] and r["samples"][0]["nfe"] == 4
    tmd = (out / "image_training.md").read_text()
    assert "| exp | elbo | 0.2 | 2 |" in tmd and "| exp | maskgit | 0.2 | 2 |" in tmd
    saved = json.loads((out / "results.json").read_text())
    assert saved["image_training"]["rows"] == train and saved["cfg"]["rows"] == res["cfg"]["rows"]
    # --replot redraws every table and plot from results.json alone
    for f in out.glob("*.png"):
        f.unlink()
    with redirect_stdout(io.StringIO()):
        ablate.replot(str(out))
    assert {f.name for f in out.glob("*.png")} == {"image_sampling.png", "cfg.png", "image_training.png"}


@pytest.mark.requires("sklearn")  # scikit-learn's digits
def test_failed_training_run_is_a_row_and_the_grid_goes_on(ablate, assets, tmp_path, monkeypatch):
    ckpt, clf, _ = assets

    class Broken:
        @staticmethod
        def train(argv):
            if "linear" in argv:
                raise RuntimeError("out of memory (simulated)")
            raise ValueError("bad config (simulated)")

    monkeypatch.setattr(ablate, "_load_recipe", lambda name="train_text": Broken)
    out = tmp_path / "abl"
    argv = ["--out", str(out), "--skip-sampling", "--skip-training", "--classifier", str(clf), "--image-train",
            "--image-vq", str(ckpt / "vq"), "--image-args", IMAGE_ARGS, "--image-train-schedules", "linear", "exp",
            "--image-train-weightings", "maskgit", "--image-train-t-min", "0.2"]
    with redirect_stdout(io.StringIO()) as buf:
        res = ablate.run(ablate.parse_args(argv))
    rows = res["image_training"]["rows"]
    assert [r["schedule"] for r in rows] == ["linear", "exp"]
    assert "out of memory" in rows[0]["error"] and "bad config" in rows[1]["error"]
    assert "FAILED" in buf.getvalue() and "needs --image-model" in buf.getvalue()
    assert (out / "image_training.md").read_text().count("failed:") == 2
    assert not (out / "image_training.png").exists()  # nothing to plot


def test_image_input_errors(ablate, assets, tmp_path):
    ckpt, clf, _ = assets
    out = str(tmp_path / "o")
    base = ["--out", out, "--skip-sampling", "--skip-training"]
    with pytest.raises(UserError, match="--classifier"):
        ablate.parse_args(base + ["--image-model", str(ckpt)])
    with pytest.raises(UserError, match="--image-model .* is not a directory"):
        ablate.parse_args(base + ["--image-model", str(tmp_path / "nope"), "--classifier", str(clf)])
    with pytest.raises(UserError, match="does nothing"):
        ablate.parse_args(base + ["--classifier", str(clf)])
    with pytest.raises(UserError, match="--image-vq"):
        ablate.parse_args(base + ["--classifier", str(clf), "--image-train", "--image-vq", str(tmp_path / "nope")])
    with pytest.raises(ValueError, match="unknown schedule"):
        ablate.parse_args(_argv(tmp_path / "o", ckpt, clf, "--image-grid-schedules", "cosine", "bogus"))
    # with --quick and a classifier, the image training grid is on unless skipped
    a = ablate.parse_args(_argv(tmp_path / "o", ckpt, clf, "--quick"))
    assert a.image_train and a.run_image_grid and a.run_cfg and a.image_vq == str(ckpt / "vq")
    a = ablate.parse_args(_argv(tmp_path / "o", ckpt, clf, "--quick", "--skip-image-training", "--skip-cfg"))
    assert not a.image_train and not a.run_cfg and a.run_image_grid


@pytest.mark.requires("sklearn")  # scikit-learn's digits
def test_training_runs_start_from_the_same_weights_whatever_ran_before(ablate, assets, tmp_path):
    import torch

    ckpt, clf, d = assets
    ev = ablate.image_eval_args(str(clf), IMAGE_ARGS, "cpu")
    scorer = ablate.build_scorer(ev)
    recipe = ablate._load_recipe("train_image")
    rows = []
    for i in range(2):
        torch.rand(1000 * (i + 1))  # other work in the process moves the global RNG
        rows.append(ablate._image_training_run(
            recipe, scorer, ev, vq=str(ckpt / "vq"), sched="linear", weighting="elbo", t_min=0.001, max_steps=2,
            max_seconds=None, base_args=f"{TRAIN} --cache_dir {d / 'cache'}".split(), eval_steps=[1], num_per_class=2,
            seed=0, runs_dir=str(tmp_path / f"r{i}"), need_info=False, log=lambda s: None))
    assert "error" not in rows[0] and rows[0]["val_nll"] == rows[1]["val_nll"]
    assert rows[0]["samples"][0]["classifier_fid"] == rows[1]["samples"][0]["classifier_fid"]
