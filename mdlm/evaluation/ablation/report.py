"""The output files of an ablation run: OUT/<part>.md + OUT/<part>.png per part, OUT/results.json (rewritten
after every part), and replot (every table and plot redrawn from results.json)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable

from ...cli import UserError
from ..files import write_json, write_text
from .captions import caption_markdown, caption_plot
from .guidance import cfg_markdown, cfg_plot
from .image_sampling import image_sampling_markdown, image_sampling_plot
from .image_training import image_training_markdown, image_training_plot
from .text_sampling import sampling_markdown, sampling_plot
from .text_training import training_markdown, training_plot


def save_results(out: str, results: dict) -> str:
    return write_json(os.path.join(out, "results.json"), results)


def write_table(out: str, name: str, md: str, plot: Callable[[str], None]) -> list[str]:
    """OUT/name.md and OUT/name.png (the plot is skipped with a note where matplotlib is missing,
    e.g. on a GPU machine without it: ``--replot OUT`` draws it later from results.json)."""
    md_path, png_path = os.path.join(out, f"{name}.md"), os.path.join(out, f"{name}.png")
    write_text(md_path, md)
    try:
        plot(png_path)
    except ImportError as e:
        print(f"note: {name}.png skipped ({e}); draw it later with: python eval/ablate.py --replot {out}", flush=True)
    print(md, flush=True)
    return [x for x in (md_path, png_path) if os.path.isfile(x)]


# results.json key → (file name, markdown, plot)
SECTIONS: dict[str, tuple[str, Callable[[dict], str], Callable[[dict, str], None]]] = {
    "sampling": ("sampling", sampling_markdown, sampling_plot),
    "training": ("training", training_markdown, training_plot),
    "image_sampling": ("image_sampling", image_sampling_markdown, image_sampling_plot),
    "cfg": ("cfg", cfg_markdown, cfg_plot),
    "captions": ("captions", caption_markdown, caption_plot),
    "image_training": ("image_training", image_training_markdown, image_training_plot),
}


def replot(out: str) -> list[str]:
    """Rewrite every table and plot of ``out`` from its results.json (no sampling, no training)."""
    path = os.path.join(out, "results.json")
    if not os.path.isfile(path):
        raise UserError(f"--replot {out}: no results.json there")
    with open(path, encoding="utf-8") as f:
        results = json.load(f)
    written: list[str] = []
    for key, (name, md, plot) in SECTIONS.items():
        if key in results:
            res = results[key]
            written += write_table(out, name, md(res), lambda p, res=res, plot=plot: plot(res, p))
    if not written:
        raise UserError(f"{path} holds no ablation results")
    return written
