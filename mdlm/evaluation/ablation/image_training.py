"""Image training ablation: short runs of recipes/train_image.py for schedule × weighting × t_min, each
reporting validation NELBO and FID + class accuracy of its samples; a failed run is a row; its table and plot."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from .grid import Images, ImageTraining
from .image_common import (
    REFERENCE_NOTE,
    fid_cells,
    fid_log,
    guidance_text,
    has_kid,
    image_figure,
    load_grid_checkpoint,
    reference_info,
    reference_lines,
    score_row,
)
from .recipe_runs import run_recipe


def image_training_ablation(
    scorer, im: Images, t: ImageTraining, *, seed: int, runs_dir: str, device: str,
    on_row: Callable[[dict], None] | None = None, log: Callable[[str], None] = print, runner: Callable = run_recipe,
) -> dict:
    """One short run of recipes/train_image.py per (schedule, weighting, t_min): its validation NELBO,
    then FID + class accuracy of its samples at each of ``t.eval_steps`` (checkpoint sampler defaults).
    A failed run becomes a row with ``error`` (the grid goes on); ``on_row`` sees the result so far.
    ``runner``: :func:`recipe_runs.run_recipe` (tests pass another)."""
    res: dict[str, Any] = {"base_args": t.train_args, "vq": t.vq, "max_steps": t.max_steps,
                           "max_train_seconds": t.max_seconds, "eval_steps": t.eval_steps,
                           "num_per_class": im.num_per_class, "references": list(im.references), "rows": []}
    for sched in t.schedules:
        for w in t.weightings:
            for t_min in t.t_min:
                row = image_training_run(scorer, im, t, sched=sched, weighting=w, t_min=t_min, seed=seed,
                                         runs_dir=runs_dir, device=device, need_info="reference_points" not in res,
                                         log=log, runner=runner)
                res.update(row.pop("reference_info", {}))  # once: the runs share the VQ and the references
                res["rows"].append(row)
                if on_row is not None:
                    on_row(res)
    return res


def image_training_run(scorer, im: Images, t: ImageTraining, *, sched: str, weighting: str, t_min: float, seed: int,
                       runs_dir: str, device: str, need_info: bool, log: Callable[[str], None] = print,
                       runner: Callable = run_recipe) -> dict:
    """One (schedule, weighting, t_min) run and its scores; a failure is a row with ``error``."""
    name = f"{sched}_{weighting}_tmin{t_min:g}"
    out = os.path.join(runs_dir, name)
    argv = (["--vq_model", t.vq] + t.train_args.split() + ["--schedule", sched, "--weighting", weighting, "--t_min",
                                                          str(t_min), "--max_steps", str(t.max_steps), "--output_dir",
                                                          out, "--seed", str(seed)]
            + (["--max_train_seconds", str(t.max_seconds)] if t.max_seconds else []))
    row: dict[str, Any] = {"schedule": sched, "weighting": weighting, "t_min": t_min, "max_steps": t.max_steps}
    t0 = time.perf_counter()
    try:
        run = runner("train_image", argv, out, t.max_steps)
        m = run.metrics
        row.update(steps=run.steps, final_train_loss=run.final_train_loss, train_s=round(time.perf_counter() - t0, 1),
                   val_nll=m["eval_nll"], val_bits_per_token=m["eval_bits_per_token"], val_ppl_bound=m["eval_ppl"],
                   val_tokens=int(m["eval_tokens"]))
        ckpt = load_grid_checkpoint(out, im, device)
        row["samples"] = [_eval_row(ckpt, scorer, im, s, seed) for s in t.eval_steps]
        if need_info:
            row["reference_info"] = reference_info(scorer, ckpt, im)
        del ckpt
    except Exception as e:  # noqa: BLE001  (one failed run must not lose the others)
        row["error"] = f"{type(e).__name__}: {e}"[:800]
        log(f"  {name:<28} FAILED: {row['error']}")
        return row
    fids = "; ".join(f"{r['steps']} steps: {fid_log(r, im.references)}, acc {r['class_accuracy']:.3f}"
                     for r in row["samples"])
    log(f"  {name:<28} {row['steps']} steps, validation ELBO {row['val_nll']:.4f} nats/token | {fids} "
        f"({time.perf_counter() - t0:.0f}s)")
    return row


def _eval_row(ckpt, scorer, im: Images, steps: int, seed: int) -> dict:
    r = score_row(ckpt, scorer, im, steps=steps, sampler={}, seed=seed)
    return {k: r[k] for k in ("steps", "nfe", "classifier_fid", "classifier_fid_by_reference", "classifier_kid",
                              "classifier_kid_std", "kid_by_reference", "class_accuracy", "sample_wall_s", "sampler")}


def image_training_markdown(res: dict) -> str:
    refs = res["references"]
    steps = res["eval_steps"]
    sampler = next((r["samples"][0]["sampler"] for r in res["rows"] if r.get("samples")), None)
    kid = has_kid([x for r in res["rows"] for x in r.get("samples", [])])
    metrics = (["KID", "FID"] if kid else ["FID"])
    cols = " | ".join(f"{s} steps: {m} vs {x}" for s in steps for m in metrics for x in refs) + " | " + " | ".join(
        f"{s} steps: acc" for s in steps)
    n_cols = len(steps) * (len(metrics) * len(refs) + 1)
    budget = f", at most {res['max_train_seconds']:g} s each" if res.get("max_train_seconds") else ""
    lines = ["# Image training ablation: schedule × weighting × t_min", "",
             f"Short runs of `recipes/train_image.py` (≤ {res['max_steps']} steps{budget}; same data, seed, model and "
             f"VQ `{res['vq']}`), eMIGM Table 9 / Fig. 2's axes. val NELBO = the true bound on the test split "
             "(nats/token, whatever weighting trained the model). Samples: "
             f"{res['num_per_class']} per class at each step count with the checkpoint's sampler defaults"
             + (f" ({sampler['schedule']} schedule, {guidance_text(sampler)})" if sampler else "")
             + f". {REFERENCE_NOTE} Base arguments: `{res['base_args']}`.", ""]
    if "reference_points" in res:
        lines += [*reference_lines(res), ""]
    lines += [f"| schedule | weighting | t_min | steps | val NELBO | bits/token | {cols} | train s |",
              "|---|---|---:|---:|---:|---:|" + "---:|" * n_cols + "---:|"]
    for r in res["rows"]:
        if "error" in r:
            lines.append(f"| {r['schedule']} | {r['weighting']} | {r['t_min']:g} | failed: {r['error'][:120]} |")
            continue
        by = {x["steps"]: x for x in r["samples"]}
        fids = " | ".join(fid_cells(by[s], refs) for s in steps)
        accs = " | ".join(f"{by[s]['class_accuracy']:.3f}" for s in steps)
        lines.append(f"| {r['schedule']} | {r['weighting']} | {r['t_min']:g} | {r['steps']} | {r['val_nll']:.4f} | "
                     f"{r['val_bits_per_token']:.4f} | {fids} | {accs} | {r['train_s']:.0f} |")
    return "\n".join(lines) + "\n"


def image_training_plot(res: dict, path: str) -> None:
    rows = [r for r in res["rows"] if "error" not in r]
    if not rows:
        return
    plt, fig, axes = image_figure(2, width=max(5.0, 0.55 * len(rows) + 2))
    x = np.arange(len(rows))
    labels = [f"{r['schedule']}\n{r['weighting']}\nt≥{r['t_min']:g}" for r in rows]
    colors = ["tab:blue" if r["weighting"] == "elbo" else "tab:orange" for r in rows]
    vals = [r["val_nll"] for r in rows]
    axes[0].bar(x, vals, color=colors)
    span = max(vals) - min(vals) + 0.05
    axes[0].set_ylim(min(vals) - 0.2 * span, max(vals) + 0.2 * span)
    axes[0].set_ylabel("validation NELBO (nats/token)")
    axes[0].set_title("blue: ELBO weighting, orange: MaskGIT w=1", fontsize=8)
    ref = res["references"][0]
    width = 0.8 / len(res["eval_steps"])
    for i, s in enumerate(res["eval_steps"]):
        fid = [next(v for v in r["samples"] if v["steps"] == s)["classifier_fid_by_reference"][ref] for r in rows]
        axes[1].bar(x - 0.4 + (i + 0.5) * width, fid, width, label=f"{s} steps")
    axes[1].set_ylabel(f"classifier-FID vs {ref}")
    axes[1].legend(fontsize=7)
    for ax in axes:
        ax.set_xticks(x, labels, fontsize=6)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle("image training ablation (eMIGM Table 9 axes)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
