"""The one ablation runner: every part a grid names (:mod:`.grid`), in a fixed order, each writing its table,
plot and ``results.json`` as soon as it ends (a run cut short keeps what it finished); scoring text samples
kept for later; redrawing every table from ``results.json``.

Order: text sampling, image sampling, guidance, captions, text training, image training. Results keys and file
names: ``sampling`` / ``image_sampling`` / ``cfg`` / ``captions`` / ``training`` / ``image_training``
(``OUT/<key>.md|png``).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from typing import Any

import torch

from ...cli import UserError
from ..files import write_text
from .grid import Grid, check_paths
from .guidance import cfg_ablation, cfg_markdown, cfg_plot
from .captions import caption_ablation, caption_markdown, caption_plot
from .image_common import build_image_scorer, load_grid_checkpoint
from .image_sampling import image_sampling_ablation, image_sampling_markdown, image_sampling_plot
from .image_training import image_training_ablation, image_training_markdown, image_training_plot
from .recipe_runs import run_recipe
from .report import replot, save_results, write_table
from .strategies import STRATEGIES  # noqa: F401  (the names a grid may use)
from .text_sampling import rows_to_score, sampling_ablation, sampling_markdown, sampling_plot, score_sampling
from .text_training import training_ablation, training_markdown, training_plot


def _free_memory() -> None:
    import gc

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _check_out(grid: Grid, out: str, overwrite: bool) -> None:
    """An existing, non-empty OUT (or keep_runs directory) is refused unless ``overwrite``."""
    dirs = [out] + [p.keep_runs for p in (grid.text_training, grid.image_training) if p is not None and p.keep_runs]
    for d in dirs:
        if os.path.isdir(d) and os.listdir(d) and not overwrite:
            raise UserError(f"{d} is not empty; pass --overwrite to write into it")


class _Run:
    """One run of a grid: the results so far, the files written, the shared image scorer."""

    def __init__(self, grid: Grid, out: str, device: str, command: str):
        self.grid, self.out, self.device = grid, out, device
        self.results: dict[str, Any] = {"command": command, "grid": grid.path, "device": device,
                                        "torch": torch.__version__}
        self.written: list[str] = []
        self._scorer = None

    def finish_part(self, key: str, res: dict, t0: float, md: Callable[[dict], str], plot) -> None:
        res["wall_s"] = round(time.perf_counter() - t0, 1)
        self.results[key] = res
        self.written += write_table(self.out, key, md(res), lambda p: plot(res, p))
        save_results(self.out, self.results)

    def scorer(self, ckpt=None):
        if self._scorer is None:
            num_classes = ckpt.info.layout.num_classes if ckpt is not None else None
            self._scorer = build_image_scorer(self.grid.images, self.device, num_classes)
        return self._scorer


def _text_sampling(r: _Run, judge) -> None:
    t, out = r.grid.text_sampling, r.out
    no_judge = t.judge is not None and t.judge.lower() == "none"
    print(f"sampling ablation on {t.model}" + (" (no judge: samples kept for --score-samples)" if no_judge else ""),
          flush=True)
    if no_judge:
        judge = None  # not loaded, not needed: `--score-samples OUT` scores the samples later
    elif judge is None:
        from ..genppl import load_judge

        judge = load_judge(t.judge)
    t0 = time.perf_counter()
    res = sampling_ablation(t.model, judge, steps=t.steps, schedules=t.schedules, strategies=t.strategies,
                            num_samples=t.num_samples, gen_length=t.gen_length, batch_size=t.batch_size,
                            seed=r.grid.seed, reference_data=t.reference_data, device=r.device,
                            samples_out=out if no_judge else None)
    r.finish_part("sampling", res, t0, sampling_markdown, sampling_plot)


def _image_checkpoint_parts(r: _Run) -> None:
    g, im = r.grid, r.grid.images
    ckpt = load_grid_checkpoint(im.model, im, r.device)
    scorer = r.scorer(ckpt)
    if g.image_sampling is not None:
        print(f"image sampling ablation on {im.model}", flush=True)
        t0 = time.perf_counter()
        p = g.image_sampling
        res = image_sampling_ablation(ckpt, scorer, im, steps=p.steps, schedules=p.schedules,
                                      strategies=p.strategies, seed=g.seed)
        r.finish_part("image_sampling", res, t0, image_sampling_markdown, image_sampling_plot)
    if g.guidance is not None:
        print(f"guidance ablation on {im.model}", flush=True)
        t0 = time.perf_counter()
        p = g.guidance
        res = cfg_ablation(ckpt, scorer, im, scale=p.scale, intervals=[tuple(x) for x in p.intervals], steps=p.steps,
                           seed=g.seed)
        r.finish_part("cfg", res, t0, cfg_markdown, cfg_plot)
    if g.captions is not None:
        print(f"caption → image on {im.model}", flush=True)
        t0 = time.perf_counter()
        p = g.captions
        res = caption_ablation(ckpt, scorer, im, steps=p.steps, scales=p.scales, interval=p.interval,
                               num_captions=p.num_captions, k=p.k, seed=g.seed)
        r.finish_part("captions", res, t0, caption_markdown, caption_plot)
    del ckpt
    _free_memory()


def _training_runs_dir(keep: str | None, prefix: str) -> str:
    return keep or tempfile.mkdtemp(prefix=prefix)


def _text_training(r: _Run, runner: Callable) -> None:
    print("training ablation", flush=True)
    t = r.grid.text_training
    runs_dir = _training_runs_dir(t.keep_runs, "mdlm_ablate_")
    t0 = time.perf_counter()
    try:
        res = training_ablation(schedules=t.schedules, weightings=t.weightings, t_mins=t.t_min, max_steps=t.max_steps,
                                base_args=t.train_args.split(), runs_dir=runs_dir, seed=r.grid.seed, runner=runner)
    finally:
        if not t.keep_runs:
            shutil.rmtree(runs_dir, ignore_errors=True)
    r.finish_part("training", res, t0, training_markdown, training_plot)


def _image_training(r: _Run, runner: Callable) -> None:
    t, out = r.grid.image_training, r.out
    print(f"image training ablation (VQ {t.vq})", flush=True)
    scorer = r.scorer()
    runs_dir = _training_runs_dir(t.keep_runs, "mdlm_ablate_img_")

    def on_row(res: dict) -> None:  # the table and results.json after every run
        r.results["image_training"] = res
        write_text(os.path.join(out, "image_training.md"), image_training_markdown(res))
        save_results(out, r.results)

    t0 = time.perf_counter()
    try:
        res = image_training_ablation(scorer, r.grid.images, t, seed=r.grid.seed, runs_dir=runs_dir, device=r.device,
                                      on_row=on_row, runner=runner)
    finally:
        if not t.keep_runs:
            shutil.rmtree(runs_dir, ignore_errors=True)
    r.finish_part("image_training", res, t0, image_training_markdown, image_training_plot)


def run_grid(grid: Grid, out: str, *, device: str, overwrite: bool = False, judge=None, command: str = "",
             runner: Callable = run_recipe) -> dict:
    """Every part of ``grid`` into ``out``; ``judge`` (a :class:`mdlm.evaluation.genppl.Judge`) may be
    injected, ``runner`` runs one training recipe (:func:`recipe_runs.run_recipe`). Returns results.json's
    content."""
    check_paths(grid)
    _check_out(grid, out, overwrite)
    os.makedirs(out, exist_ok=True)
    r = _Run(grid, out, device, command)
    t_all = time.perf_counter()
    if grid.text_sampling is not None:
        _text_sampling(r, judge)
    if grid.image_sampling is not None or grid.guidance is not None or grid.captions is not None:
        _image_checkpoint_parts(r)
    if grid.text_training is not None:
        _text_training(r, runner)
    if grid.image_training is not None:
        _image_training(r, runner)
    r.results["wall_s"] = round(time.perf_counter() - t_all, 1)
    r.written.append(save_results(out, r.results))
    print("wrote " + ", ".join(dict.fromkeys(r.written)), flush=True)
    return r.results


def score_samples(out: str, judge_path: str | None = None, *, rescore: bool = False, judge=None,
                  command: str = "") -> dict:
    """Score the text samples that a ``judge: none`` run kept in OUT (``judge`` may be injected), rewrite
    OUT/results.json and redraw every table and plot. Every check comes before the judge loads."""
    path = os.path.join(out, "results.json")
    if not os.path.isfile(path):
        raise UserError(f"--score-samples {out}: no results.json there")
    with open(path, encoding="utf-8") as f:
        results = json.load(f)
    res = results.get("sampling")
    if not res or not res.get("rows"):
        raise UserError(f"--score-samples {out}: its results.json has no text sampling rows")
    if not rows_to_score(res, out, rescore):
        print(f"every sampling row of {out} is scored already; pass --rescore to score them again", flush=True)
        return results
    if judge is None:
        from ..genppl import load_judge

        judge = load_judge(judge_path)
    t0 = time.perf_counter()
    n = score_sampling(res, out, judge, force=rescore, after_row=lambda: save_results(out, results))
    res["score_wall_s"] = round(time.perf_counter() - t0, 1)
    if command:
        res["score_command"] = command
    save_results(out, results)
    print(f"scored {n} row(s); wrote " + ", ".join(replot(out) + [path]), flush=True)
    return results
