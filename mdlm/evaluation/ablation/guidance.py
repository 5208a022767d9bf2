"""Classifier-free guidance ablation (images): no guidance vs constant guidance vs guidance only inside
τ-intervals, at several step counts, with NFE per image; its table and plot (quality against NFE)."""

from __future__ import annotations

from collections.abc import Callable

from ..image_scoring import metric_name
from .grid import Images
from .image_common import (
    REFERENCE_NOTE,
    fid_cells,
    fid_header,
    bal_acc,
    fid_log,
    floor_lines,
    has_kid,
    image_figure,
    metric_value,
    mix_text,
    reference_info,
    reference_lines,
    score_row,
)


def cfg_settings(scale: float, intervals: list[tuple[float, float]]) -> list[tuple[str, float, tuple[float, float]]]:
    """(name, scale, interval): no guidance, constant guidance, guidance inside each interval."""
    settings = [("none", 0.0, (0.0, 1.0)), ("constant", scale, (0.0, 1.0))]
    return settings + [(f"interval {lo:g}-{hi:g}", scale, (lo, hi)) for lo, hi in intervals if (lo, hi) != (0.0, 1.0)]


def cfg_ablation(ckpt, scorer, im: Images, *, scale: float | None, intervals: list[tuple[float, float]],
                 steps: list[int], seed: int, log: Callable[[str], None] = print) -> dict:
    """No guidance, constant guidance (interval [0, 1]) and guidance inside each interval, at every
    step count: FID, class accuracy and NFE per image (an unconditional pass costs one NFE)."""
    if scale is None:  # the checkpoint's scale (1 when it has none)
        scale = float(ckpt.defaults.get("guidance_scale", ckpt.defaults.get("cfg_scale")) or 1.0)
    rows = []
    for s in steps:
        for name, sc, (lo, hi) in cfg_settings(scale, intervals):
            r = score_row(ckpt, scorer, im, steps=s, sampler={"cfg_scale": sc, "cfg_interval": (lo, hi)}, seed=seed)
            rows.append({"guidance": name, "cfg_scale": sc, "interval": [lo, hi], **r})
            log(f"  {name:<16} scale {sc:g} steps {s:>3}: NFE/image {r['nfe']:>3} | {fid_log(r, im.references)} | "
                f"class acc {r['class_accuracy']:.3f}")
    return {"model": ckpt.path, "metric": metric_name(scorer.clf), "num_per_class": im.num_per_class, "seed": seed,
            "cfg_scale": scale, **reference_info(scorer, ckpt, im), "rows": rows}


def cfg_markdown(res: dict) -> str:
    refs = res["references"]
    head, align = fid_header(refs, has_kid(res["rows"]))
    lines = [f"# Classifier-free guidance: {res['model']}", "",
             f"Images per row: {mix_text(res)}; seed {res['seed']}; guided logits ℓ = c + s·(c − u), "
             f"s = {res['cfg_scale']:g}. Interval = the τ range (share of the image still masked before the step) in "
             "which the unconditional pass runs and guidance is applied; NFE/image counts every network pass per "
             "image (the unconditional pass is one), so an interval saves NFE. Other sampler settings: the "
             f"checkpoint's defaults. {res['metric']}; {REFERENCE_NOTE}", "", *reference_lines(res), "",
             f"| guidance | scale | interval | steps | NFE/image | {head} | class acc | balanced acc | sample s |",
             f"|---|---:|---|---:|---:|{align}|---:|---:|---:|"]
    for r in res["rows"]:
        lines.append(f"| {r['guidance']} | {r['cfg_scale']:g} | {r['interval'][0]:g}–{r['interval'][1]:g} | {r['steps']} | "
                     f"{r['nfe']} | {fid_cells(r, refs)} | {r['class_accuracy']:.3f} | {bal_acc(r)} | "
                     f"{r['sample_wall_s']:.1f} |")
    return "\n".join(lines) + "\n"


def cfg_plot(res: dict, path: str) -> None:
    """KID (FID before KID existed) for each reference and class accuracy against NFE per image, one line per
    guidance setting; the reference points as horizontal lines."""
    refs = res["references"]
    metric = "kid" if has_kid(res["rows"]) else "fid"
    plt, fig, axes = image_figure(len(refs) + 1, width=4.6)
    groups: dict[str, list[dict]] = {}
    for r in res["rows"]:
        groups.setdefault(r["guidance"], []).append(r)
    for name, rs in groups.items():
        rs = sorted(rs, key=lambda r: r["nfe"])
        x = [r["nfe"] for r in rs]
        for ax, ref in zip(axes, refs):
            ax.plot(x, [metric_value(r, ref, metric) for r in rs], marker="o", label=name)
        axes[-1].plot(x, [r["class_accuracy"] for r in rs], marker="o", label=name)
        for r in rs:
            axes[0].annotate(f"{r['steps']}", (r["nfe"], metric_value(r, refs[0], metric)), fontsize=6,
                             textcoords="offset points", xytext=(3, 3))
    for ax, ref in zip(axes, refs):
        floor_lines(ax, res, ref, metric)
        ax.set_ylabel(f"classifier-{metric.upper()} vs {ref}")
    axes[-1].set_ylabel("class accuracy")
    for ax in axes:
        ax.set_xscale("log", base=2)
        ax.set_xlabel("NFE per image (labels: steps)")
        ax.grid(alpha=0.3)
    axes[-1].legend(fontsize=7)
    fig.suptitle(f"classifier-free guidance, scale {res['cfg_scale']:g}: quality vs network evaluations", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
