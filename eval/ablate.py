"""Ablations of the masked-diffusion sampler and objective, text and images: one runner, grids as data.

    python eval/ablate.py eval/ablations/quick.yaml --out DIR              # the small CPU grids (minutes)
    python eval/ablate.py GRID.yaml --out DIR --set text_sampling.model=runs/x --set text_sampling.steps=[8,32]
    python eval/ablate.py GRID.yaml --out DIR --only text_sampling         # only some of the grid's parts
    # text samples made where no judge is installed (GRID with text_sampling.judge: none), scored later
    python eval/ablate.py --score-samples DIR [--judge J] [--rescore]
    python eval/ablate.py --replot DIR                                     # every table and plot from results.json

A grid (``eval/ablations/*.yaml``; its keys: mdlm/evaluation/ablation/grid.py) names the parts to run and
their axes: ``text_sampling`` (steps × schedule × strategy, genppl under a judge LM + unigram entropy),
``text_training`` (schedule × weighting × t_min, short runs of recipes/train_text.py, validation NELBO),
``image_sampling`` and ``guidance`` (classifier-KID and -FID + class accuracy of an image checkpoint's samples,
beside unpaired reference points from two halves of the test split — docs/images/evaluation.md §3; CFG none /
constant / τ-intervals with NFE per image), ``image_training`` (short runs of recipes/train_image.py, NELBO + KID /
FID); ``images`` holds what the image parts share (checkpoint, classifier, reference images, ``class_mix``).

Writes ``OUT/<part>.md|png`` and ``OUT/results.json`` (rewritten after every part, so a run cut short keeps
what it finished); a non-empty OUT is refused unless ``--overwrite``. docs/ablations/README.md lists the
grid and command of every committed result.
"""

from __future__ import annotations

import argparse
import sys

import torch

from mdlm.cli import ArgumentParser, UserError, run_cli


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = ArgumentParser(description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("grid", nargs="?", help="grid YAML (eval/ablations/*.yaml)")
    p.add_argument("--out", help="output directory (tables, plots, results.json)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="PART.KEY=VALUE",
                   help="change one setting of the grid (VALUE read as YAML); repeatable")
    p.add_argument("--only", nargs="+", metavar="PART", help="run only these parts of the grid")
    p.add_argument("--overwrite", action="store_true", help="write into a non-empty --out")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--replot", metavar="OUT", help="only redraw the tables and plots of OUT from its results.json")
    p.add_argument("--score-samples", metavar="OUT", help="score the text samples a 'judge: none' run kept in OUT")
    p.add_argument("--judge", help="--score-samples: judge LM dir or .gguf (default: SmolLM2-135M)")
    p.add_argument("--rescore", action="store_true", help="--score-samples: score the rows scored already too")
    a = p.parse_args(argv)
    modes = [x for x in (a.grid, a.replot, a.score_samples) if x]
    if len(modes) != 1:
        p.error("give one of: GRID.yaml --out DIR, --replot OUT, --score-samples OUT")
    if a.grid and not a.out:
        p.error("GRID.yaml needs --out DIR")
    if (a.judge or a.rescore) and not a.score_samples:
        p.error("--judge and --rescore go with --score-samples (a grid names its judge: text_sampling.judge)")
    return a


def load(a: argparse.Namespace):
    """The grid of ``a`` with its overrides, restricted to ``--only``."""
    from mdlm.evaluation.ablation.grid import PARTS, load_grid

    grid = load_grid(a.grid, a.overrides)
    if a.only:
        unknown = [x for x in a.only if x not in grid.parts()]
        if unknown:
            raise UserError(f"--only {' '.join(unknown)}: not a part of {a.grid} (its parts: {', '.join(grid.parts())})")
        for name in PARTS:
            if name != "images" and name not in a.only:
                setattr(grid, name, None)
    return grid


@run_cli
def main() -> int:
    a = parse_args()
    command = "python eval/ablate.py " + " ".join(sys.argv[1:])
    from mdlm.evaluation.ablation.report import replot
    from mdlm.evaluation.ablation.runner import run_grid, score_samples

    if a.replot:
        print("wrote " + ", ".join(replot(a.replot)))
        return 0
    if a.score_samples:
        score_samples(a.score_samples, a.judge, rescore=a.rescore, command=command)
        return 0
    grid = load(a)
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # no "Loading weights" bars between the table rows
    run_grid(grid, a.out, device=a.device, overwrite=a.overwrite, command=command)
    return 0


if __name__ == "__main__":
    main()
