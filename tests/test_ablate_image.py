"""The ablation runner's image parts in micro form (CPU, seconds): the sampling grid, the CFG table with NFE per
image and the training grid (2 runs of recipes/train_image.py on digits), on a random 8×8 checkpoint and a
random classifier; a failed training run is a row, not a crash; input errors are one line."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout
from pathlib import Path

import pytest
from test_image_sample_eval import make_classifier, make_image_checkpoint

from mdlm.cli import UserError
from mdlm.evaluation.ablation import runner
from mdlm.evaluation.ablation.grid import check_paths, grid_from_dict
from mdlm.evaluation.ablation.image_common import build_image_scorer
from mdlm.evaluation.ablation.image_training import image_training_run

TRAIN = (
    "--dataset digits --hidden_size 32 --num_hidden_layers 1 --num_attention_heads 2 --per_device_train_batch_size 32 "
    "--per_device_eval_batch_size 128 --max_eval_samples 128 --eval_num_samples 1 --learning_rate 0.003 "
    "--logging_steps 1 --report_to none --use_cpu true --seed 0 --dataloader_num_workers 0"
)


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    d = tmp_path_factory.mktemp("abl_img")
    return make_image_checkpoint(d / "ckpt"), make_classifier(d / "clf"), d


def images(ckpt: Path | None, clf: Path, **kw) -> dict:
    return {"model": str(ckpt) if ckpt else None, "classifier": str(clf), "num_per_class": 3, "dataset": "digits",
            "max_reference": 60, "batch_size": 64, **kw}


def training(d: Path, **kw) -> dict:
    return {"schedules": ["exp"], "weightings": ["elbo", "maskgit"], "t_min": [0.2], "max_steps": 2, "eval_steps": [2],
            "train_args": f"{TRAIN} --cache_dir {d / 'cache'}", **kw}


@pytest.mark.requires("sklearn")  # scikit-learn's digits
@pytest.mark.slow
def test_image_grid_cfg_table_and_training_grid(assets, tmp_path):
    ckpt, clf, d = assets
    out = tmp_path / "abl"
    grid = grid_from_dict({
        "images": images(ckpt, clf),
        "image_sampling": {"steps": [1, 2], "schedules": ["linear"], "strategies": ["maskgit-confidence", "moment"]},
        "guidance": {"steps": [4, 8], "intervals": [[0, 0.5]]},
        "image_training": training(d)})
    with redirect_stdout(io.StringIO()):
        res = runner.run_grid(grid, str(out), device="cpu")
    for f in ["image_sampling.md", "image_sampling.png", "cfg.md", "cfg.png", "image_training.md",
              "image_training.png", "results.json"]:
        assert (out / f).is_file() and (out / f).stat().st_size > 0, f
    assert not (out / "sampling.md").exists() and not (out / "training.md").exists()

    samp = res["image_sampling"]
    assert [(r["schedule"], r["strategy"], r["steps"]) for r in samp["rows"]] == [
        ("linear", s, n) for s in ("maskgit-confidence", "moment") for n in (1, 2)]
    assert samp["base_sampler"]["cfg_scale"] == 1.0 and samp["references"] == ["recon", "test"]
    for r in samp["rows"]:
        assert r["nfe"] == 2 * r["steps"]  # the checkpoint's CFG on every step, in every row
        assert r["sampler"]["schedule"] == "linear" and r["n_images"] == 30
        assert all(v >= 0 for v in r["classifier_fid_by_reference"].values())
        assert set(r["kid_by_reference"]) == {"recon", "test"} and r["classifier_kid"] == r["kid_by_reference"]["recon"]["kid"]
        assert all(k["kid_std"] > 0 for k in r["kid_by_reference"].values())  # subsets differ: the std says something
        assert r["class_mix"] == "data" and 0 <= r["class_accuracy_balanced"] <= 1
    halves = samp["reference_halves"]
    assert halves["n_each"] == samp["n_probe"] == 60 and halves["kid_subset_size"] == 30  # max_reference caps a half
    for ref in ("recon", "test"):  # unpaired points, each with FID and KID
        assert set(samp["reference_points"][ref]) == {"real_half_b", "vq_recon_half_b", "real_train_seen"}
        assert all({"fid", "kid", "kid_std"} <= set(p) for p in samp["reference_points"][ref].values())
    assert [r["sampler"]["sampler"] for r in samp["rows"]] == ["maskgit", "maskgit", "moment", "moment"]
    md = (out / "image_sampling.md").read_text()
    assert "classifier-free guidance ℓ = c + 1·(c − u) on every step" in md
    assert "| KID vs recon | KID vs test | FID vs recon | FID vs test | class acc | balanced acc |" in md
    assert "real half B KID" in md and "by the test split's class mix" in md

    cfg = {(r["guidance"], r["steps"]): r for r in res["cfg"]["rows"]}
    assert set(cfg) == {(g, s) for g in ("none", "constant", "interval 0-0.5") for s in (4, 8)}
    for s in (4, 8):
        assert cfg["none", s]["nfe"] == s < cfg["interval 0-0.5", s]["nfe"] < cfg["constant", s]["nfe"] == 2 * s
    assert "NFE/image" in (out / "cfg.md").read_text() and "| KID vs recon |" in (out / "cfg.md").read_text()

    train = res["image_training"]["rows"]
    assert [(r["schedule"], r["weighting"], r["t_min"]) for r in train] == [("exp", "elbo", 0.2), ("exp", "maskgit", 0.2)]
    for r in train:
        assert "error" not in r and r["steps"] == 2 and r["val_nll"] > 0 and r["val_tokens"] == 128 * 16
        assert [x["steps"] for x in r["samples"]] == [2] and r["samples"][0]["nfe"] == 4
    tmd = (out / "image_training.md").read_text()
    assert "| exp | elbo | 0.2 | 2 |" in tmd and "| exp | maskgit | 0.2 | 2 |" in tmd and "2 steps: KID vs test" in tmd
    saved = json.loads((out / "results.json").read_text())
    assert saved["image_training"]["rows"] == train and saved["cfg"]["rows"] == res["cfg"]["rows"]
    # replot redraws every table and plot from results.json alone
    for f in out.glob("*.png"):
        f.unlink()
    with redirect_stdout(io.StringIO()):
        runner.replot(str(out))
    assert {f.name for f in out.glob("*.png")} == {"image_sampling.png", "cfg.png", "image_training.png"}


@pytest.mark.requires("sklearn")  # scikit-learn's digits
def test_failed_training_run_is_a_row_and_the_grid_goes_on(assets, tmp_path):
    ckpt, clf, d = assets

    def broken(recipe, argv, output_dir, max_steps):
        if "linear" in argv:
            raise RuntimeError("out of memory (simulated)")
        raise ValueError("bad config (simulated)")

    out = tmp_path / "abl"
    grid = grid_from_dict({"images": images(None, clf),
                           "image_training": training(d, vq=str(ckpt / "vq"), schedules=["linear", "exp"],
                                                      weightings=["maskgit"])})
    with redirect_stdout(io.StringIO()) as buf:
        res = runner.run_grid(grid, str(out), device="cpu", runner=broken)
    rows = res["image_training"]["rows"]
    assert [r["schedule"] for r in rows] == ["linear", "exp"]
    assert "out of memory" in rows[0]["error"] and "bad config" in rows[1]["error"]
    assert "FAILED" in buf.getvalue()
    assert (out / "image_training.md").read_text().count("failed:") == 2
    assert not (out / "image_training.png").exists()  # nothing to plot


def test_image_input_errors(assets, tmp_path):
    ckpt, clf, _ = assets
    sampling = {"steps": [1], "schedules": ["cosine"], "strategies": ["moment"]}
    with pytest.raises(UserError, match="need images.model"):
        grid_from_dict({"images": images(None, clf), "image_sampling": sampling})
    with pytest.raises(UserError, match="images.model .* is not a directory"):
        check_paths(grid_from_dict({"images": images(tmp_path / "nope", clf), "image_sampling": sampling}))
    with pytest.raises(UserError, match="unknown schedule"):
        grid_from_dict({"images": images(ckpt, clf), "image_sampling": {**sampling, "schedules": ["cosine", "bogus"]}})
    with pytest.raises(UserError, match="strategies: unknown best"):
        grid_from_dict({"images": images(ckpt, clf), "image_sampling": {**sampling, "strategies": ["best"]}})
    with pytest.raises(UserError, match="intervals must be"):
        grid_from_dict({"images": images(ckpt, clf), "guidance": {"steps": [4], "intervals": [[0.5, 0.2]]}})
    with pytest.raises(UserError, match="image_training.vq"):
        check_paths(grid_from_dict({"images": images(None, clf),
                                    "image_training": training(tmp_path, vq=str(tmp_path / "nope"))}))
    g = grid_from_dict({"images": images(ckpt, clf), "image_training": training(tmp_path)})
    check_paths(g)
    assert g.image_training.vq == str(ckpt / "vq")  # the checkpoint's own VQ by default


@pytest.mark.requires("sklearn")  # scikit-learn's digits
@pytest.mark.slow
def test_training_runs_start_from_the_same_weights_whatever_ran_before(assets, tmp_path):
    import torch

    ckpt, clf, d = assets
    g = grid_from_dict({"images": images(None, clf), "image_training": training(d, vq=str(ckpt / "vq"), eval_steps=[1])})
    scorer = build_image_scorer(g.images, "cpu")
    rows = []
    for i in range(2):
        torch.rand(1000 * (i + 1))  # other work in the process moves the global RNG
        rows.append(image_training_run(scorer, g.images, g.image_training, sched="linear", weighting="elbo",
                                       t_min=0.001, seed=0, runs_dir=str(tmp_path / f"r{i}"), device="cpu",
                                       need_info=False, log=lambda s: None))
    assert "error" not in rows[0] and rows[0]["val_nll"] == rows[1]["val_nll"]
    assert rows[0]["samples"][0]["classifier_fid"] == rows[1]["samples"][0]["classifier_fid"]
