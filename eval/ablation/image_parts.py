"""Running the image parts of eval/ablate.py: the sampling grid and the CFG table share one checkpoint load,
every image part shares one scorer (the reference features are computed once); each table and results.json
are rewritten as soon as a part (an image training run) finishes."""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from typing import Any

from .cfg import cfg_ablation, cfg_markdown, cfg_plot
from .common import free_memory, load_recipe
from .image_common import build_scorer, image_eval_args, load_image_checkpoint
from .image_sampling import image_sampling_ablation, image_sampling_markdown, image_sampling_plot
from .image_training import image_training_ablation, image_training_markdown, image_training_plot
from .report import save_results, write_table


def image_scorer(a: argparse.Namespace, ckpt=None):
    """(image_sample_eval options, scorer) for the image parts; built once per run()."""
    if getattr(a, "_scorer", None) is None:
        ev = image_eval_args(a.classifier, a.image_args, a.device, a.image_model or "-")
        a._scorer = (ev, build_scorer(ev, ckpt.info.layout.num_classes if ckpt is not None else None))
    return a._scorer


def run_images(a: argparse.Namespace, results: dict) -> list[str]:
    """The image sampling grid and the CFG table on ``--image-model`` (one checkpoint load, one scorer)."""
    if not (a.run_image_grid or a.run_cfg):
        if not a.image_model:
            print("image sampling / guidance ablations skipped: each needs --image-model DIR --classifier DIR",
                  flush=True)
        return []
    ev0 = image_eval_args(a.classifier, a.image_args, a.device, a.image_model)
    ckpt = load_image_checkpoint(a.image_model, ev0)
    ev, scorer = image_scorer(a, ckpt)
    written = []
    if a.run_image_grid:
        print(f"image sampling ablation on {a.image_model}", flush=True)
        t0 = time.perf_counter()
        res = image_sampling_ablation(ckpt, scorer, ev, steps=a.image_grid_steps, schedules=a.image_grid_schedules,
                                      strategies=a.image_grid_strategies, num_per_class=a.num_per_class, seed=a.seed)
        res["wall_s"] = round(time.perf_counter() - t0, 1)
        results["image_sampling"] = res
        written += write_table(a.out, "image_sampling", image_sampling_markdown(res),
                               lambda p: image_sampling_plot(res, p))
        save_results(a.out, results)
    if a.run_cfg:
        print(f"guidance ablation on {a.image_model}", flush=True)
        pairs = [(a.cfg_intervals[i], a.cfg_intervals[i + 1]) for i in range(0, len(a.cfg_intervals), 2)]
        t0 = time.perf_counter()
        res = cfg_ablation(ckpt, scorer, ev, scale=a.cfg_scale, intervals=pairs, steps=a.image_steps,
                           num_per_class=a.num_per_class, seed=a.seed)
        res["wall_s"] = round(time.perf_counter() - t0, 1)
        results["cfg"] = res
        written += write_table(a.out, "cfg", cfg_markdown(res), lambda p: cfg_plot(res, p))
        save_results(a.out, results)
    del ckpt
    free_memory()
    return written


def run_image_training(a: argparse.Namespace, results: dict,
                       recipe_loader: Callable[[str], Any] = load_recipe) -> list[str]:
    """The image training grid; its table and results.json are rewritten after every run.
    ``recipe_loader(name)`` loads recipes/<name>.py (eval/ablate.py passes its ``_load_recipe``)."""
    print(f"image training ablation (VQ {a.image_vq})", flush=True)
    ev, scorer = image_scorer(a)
    runs_dir = a.image_keep_runs or tempfile.mkdtemp(prefix="mdlm_ablate_img_")
    md_path = os.path.join(a.out, "image_training.md")

    def on_row(res: dict) -> None:
        results["image_training"] = res
        with open(md_path, "w", encoding="utf-8") as f:
            f.write(image_training_markdown(res))
        save_results(a.out, results)

    t0 = time.perf_counter()
    try:
        res = image_training_ablation(
            scorer, ev, vq=a.image_vq, schedules=a.image_train_schedules, weightings=a.image_train_weightings,
            t_mins=a.image_train_t_min, max_steps=a.image_train_steps, max_seconds=a.image_train_seconds,
            base_args=a.image_train_args.split(), eval_steps=a.image_train_eval_steps, num_per_class=a.num_per_class,
            seed=a.seed, runs_dir=runs_dir, on_row=on_row, recipe=recipe_loader("train_image"))
    finally:
        if not a.image_keep_runs:
            shutil.rmtree(runs_dir, ignore_errors=True)
    res["wall_s"] = round(time.perf_counter() - t0, 1)
    results["image_training"] = res
    written = write_table(a.out, "image_training", image_training_markdown(res), lambda p: image_training_plot(res, p))
    save_results(a.out, results)
    return written
