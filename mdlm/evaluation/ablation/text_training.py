"""Text training ablation: short runs of recipes/train_text.py for schedule × weighting × t_min, each
reporting the validation NELBO; its table and plot."""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from .recipe_runs import run_recipe


def training_ablation(
    *, schedules: list[str], weightings: list[str], t_mins: list[float], max_steps: int, base_args: list[str],
    runs_dir: str, seed: int = 0, log: Callable[[str], None] = print, runner: Callable = run_recipe,
) -> dict:
    """One short run of recipes/train_text.py per (schedule, weighting, t_min); the validation NELBO of each.
    Every run is its own process seeded with ``seed``, so every run starts from the same initial weights.
    ``runner``: :func:`recipe_runs.run_recipe` (tests pass another)."""
    rows = []
    for sched in schedules:
        for w in weightings:
            for t_min in t_mins:
                name = f"{sched}_{w}_tmin{t_min:g}"
                out = os.path.join(runs_dir, name)
                argv = base_args + ["--schedule", sched, "--weighting", w, "--t_min", str(t_min), "--max_steps",
                                    str(max_steps), "--output_dir", out, "--seed", str(seed)]
                t0 = time.perf_counter()
                try:
                    run = runner("train_text", argv, out, max_steps)
                except RuntimeError as e:
                    raise RuntimeError(f"training run {name} failed: {e}") from e
                dt = time.perf_counter() - t0
                m = run.metrics
                rows.append({"schedule": sched, "weighting": w, "t_min": t_min, "steps": max_steps,
                             "final_train_loss": run.final_train_loss, "val_nll": m["eval_nll"],
                             "val_bits_per_token": m["eval_bits_per_token"], "val_ppl_bound": m["eval_ppl"],
                             "val_tokens": int(m["eval_tokens"]), "train_s": round(dt, 1)})
                log(f"  {name:<28} validation ELBO {m['eval_nll']:.4f} nats/token, ppl ≤ {m['eval_ppl']:.2f} ({dt:.0f}s)")
    return {"base_args": " ".join(base_args), "rows": rows}


def training_markdown(res: dict) -> str:
    lines = ["# Training ablation: schedule × weighting × t_min", "",
             "Short runs of `recipes/train_text.py` with the same data, seed and model; the figure is the validation "
             "NELBO (Monte-Carlo, fixed masks: mdlm/evaluation/elbo.py), the true bound whatever weighting trained the model. "
             f"Base arguments: `{res['base_args']}`.", "",
             "| schedule | weighting | t_min | steps | val NELBO (nats/token) | bits/token | ppl ≤ | final train loss | train s |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in res["rows"]:
        loss = f"{r['final_train_loss']:.3f}" if r["final_train_loss"] is not None else "-"
        lines.append(f"| {r['schedule']} | {r['weighting']} | {r['t_min']:g} | {r['steps']} | {r['val_nll']:.4f} | "
                     f"{r['val_bits_per_token']:.4f} | {r['val_ppl_bound']:.2f} | {loss} | {r['train_s']:.0f} |")
    return "\n".join(lines) + "\n"


def training_plot(res: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = res["rows"]
    fig, ax = plt.subplots(figsize=(max(5.0, 0.7 * len(rows) + 2), 3.8))
    labels = [f"{r['schedule']}\n{r['weighting']}\nt≥{r['t_min']:g}" for r in rows]
    colors = ["tab:blue" if r["weighting"] == "elbo" else "tab:orange" for r in rows]
    ax.bar(range(len(rows)), [r["val_nll"] for r in rows], color=colors)
    ax.set_xticks(range(len(rows)), labels, fontsize=7)
    lo = min(r["val_nll"] for r in rows)
    hi = max(r["val_nll"] for r in rows)
    ax.set_ylim(lo - 0.1 * (hi - lo + 0.1), hi + 0.1 * (hi - lo + 0.1))
    ax.set_ylabel("validation NELBO (nats/token)")
    ax.set_title("training ablation (blue: ELBO weighting, orange: MaskGIT w=1)", fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
