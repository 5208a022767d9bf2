"""Image sampling ablation (no retraining): steps × schedule × strategy on an image checkpoint, on top of its
sampler defaults (its classifier-free guidance included); KID + FID + class accuracy per row; its table and plot."""

from __future__ import annotations

import os
from collections.abc import Callable

from ..image_scoring import SAMPLER_KEYS, metric_name
from .grid import Images
from .image_common import (
    REFERENCE_NOTE,
    fid_cells,
    fid_header,
    fid_log,
    floor_lines,
    guidance_text,
    bal_acc,
    has_kid,
    image_figure,
    metric_value,
    mix_text,
    reference_info,
    reference_lines,
    score_row,
)
from .plotting import step_curves
from .strategies import STRATEGIES


def image_sampling_ablation(
    ckpt, scorer, im: Images, *, steps: list[int], schedules: list[str], strategies: list[str], seed: int,
    log: Callable[[str], None] = print,
) -> dict:
    """``im.num_per_class`` images per class for every (schedule, strategy, steps) from the checkpoint's
    sampler defaults (its CFG included) + the grid's ``images.sampler``; FID + accuracy of each."""
    rows = []
    for schedule in schedules:
        for strategy in strategies:
            for s in steps:
                r = score_row(ckpt, scorer, im, steps=s, sampler={**STRATEGIES[strategy], "schedule": schedule},
                              seed=seed)
                rows.append({"schedule": schedule, "strategy": strategy, **r})
                log(f"  {schedule:>7} {strategy:<20} steps {s:>3}: {fid_log(r, im.references)} | class acc "
                    f"{r['class_accuracy']:.3f} | NFE {r['nfe']} | {r['sample_wall_s']:.1f}s")
    from ...pipelines.text import sampler_config_from

    defaults, _ = sampler_config_from(ckpt.defaults, dict(im.sampler))
    sampler = {k: v for k, v in defaults.to_legacy_dict().items() if k in SAMPLER_KEYS}
    sampler["cfg_interval"] = list(sampler["cfg_interval"])
    cfg_source = ("set by the grid's images.sampler"
                  if {"cfg_scale", "cfg_interval", "guidance_scale", "guidance_interval"} & set(im.sampler)
                  else "the checkpoint's default")
    return {"model": ckpt.path, "metric": metric_name(scorer.clf), "num_per_class": im.num_per_class, "seed": seed,
            "base_sampler": sampler, "cfg_source": cfg_source, "strategies": {k: STRATEGIES[k] for k in strategies},
            **reference_info(scorer, ckpt, im), "rows": rows}


def image_sampling_markdown(res: dict) -> str:
    refs = res["references"]
    n = res["rows"][0]["n_images"] if res["rows"] else 0
    b = res["base_sampler"]
    head, align = fid_header(refs, has_kid(res["rows"]))
    lines = [
        f"# Image sampling ablation: {res['model']}",
        "",
        f"**{guidance_text(b)}** ({res.get('cfg_source', 'the checkpoint default')}, the same in every row). "
        f"{n} images per row "
        f"({mix_text(res)}), seed {res['seed']}; every row starts from the checkpoint's sampler "
        f"defaults (token temperature {b['temperature']:g}, choice temperature {b['choice_temperature']:g}) and "
        "sets the schedule, the step count and the strategy: "
        + "; ".join(f"`{k}` = {', '.join(f'{kk}={vv}' for kk, vv in v.items())}" for k, v in res["strategies"].items())
        + f". {res['metric']}; {REFERENCE_NOTE}",
        "",
        *reference_lines(res),
        "",
        f"| schedule | strategy | steps | NFE/image | {head} | class acc | balanced acc | sample s |",
        f"|---|---|---:|---:|{align}|---:|---:|---:|",
    ]
    for r in res["rows"]:
        lines.append(f"| {r['schedule']} | {r['strategy']} | {r['steps']} | {r['nfe']} | {fid_cells(r, refs)} | "
                     f"{r['class_accuracy']:.3f} | {bal_acc(r)} | {r['sample_wall_s']:.1f} |")
    return "\n".join(lines) + "\n"


def image_sampling_plot(res: dict, path: str) -> None:
    """KID (FID for results written before KID) against steps, one panel per reference with its reference points as
    horizontal lines, and class accuracy."""
    refs = res["references"]
    metric = "kid" if has_kid(res["rows"]) else "fid"
    plt, fig, axes = image_figure(len(refs) + 1)
    for kw, rs in step_curves(res["rows"]):
        x = [r["steps"] for r in rs]
        for ax, ref in zip(axes, refs):
            ax.plot(x, [metric_value(r, ref, metric) for r in rs], **kw)
        axes[-1].plot(x, [r["class_accuracy"] for r in rs], **kw)
    for ax, ref in zip(axes, refs):
        floor_lines(ax, res, ref, metric)
        ax.set_ylabel(f"classifier-{metric.upper()} vs {ref} (lower is better)")
        ax.legend(fontsize=6, loc="upper right")
    axes[-1].set_ylabel("class accuracy")
    for ax in axes:
        ax.set_xscale("log", base=2)
        ax.set_xlabel("sampler steps")
        ax.grid(alpha=0.3)
    axes[-1].legend(fontsize=7)
    fig.suptitle(f"image sampling ablation: {os.path.basename(res['model'].rstrip('/'))}, "
                 f"{guidance_text(res['base_sampler'])}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
