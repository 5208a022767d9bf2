"""Plot the held-out ELBO-perplexity ratio (adapted MDM / AR source) against training tokens.

One curve per adaptation run (the ``--results_json`` files of ``recipes/adapt_ar.py``), with the issue's 1.5× goal
line.

    python eval/plot_adapt_curves.py --run "LoRA r=64=docs/backbones/h200x2_adapt_lora_results.json" \\
        --run "full, all weights=docs/backbones/h200x2_adapt_full_results.json" \\
        --run "full, projections (long)=docs/backbones/h200_adapt_long/long_results_finish.json" \\
        --split validation_wiki --out docs/backbones/adapt_ratio_curves.png
"""

from __future__ import annotations

import json

from mdlm.cli import ArgumentParser, UserError, refuse_overwrite, run_cli


def parse(argv=None):
    p = ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--run", action="append", required=True, metavar="LABEL=RESULTS_JSON")
    p.add_argument("--split", default="validation_wiki", help="eval set of the curve (e.g. validation_wiki)")
    p.add_argument("--goal", type=float, default=1.5)
    p.add_argument("--out", required=True, help="PNG to write")
    p.add_argument("--overwrite", action="store_true")
    return p.parse_args(argv)


def curve(path: str, split: str) -> list[tuple[float, float]]:
    """(training tokens in millions, ratio) of ``split``, the untrained point (tokens 0) left out."""
    with open(path, encoding="utf-8") as f:
        points = [p for p in json.load(f)["curve"] if p["eval"] == split and p["tokens"] > 0]
    if not points:
        raise UserError(f"{path} has no {split} points")
    return sorted((p["tokens"] / 1e6, p["ratio"]) for p in points)


@run_cli
def main(argv=None) -> int:
    a = parse(argv)
    refuse_overwrite(a.out, a.overwrite)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for spec in a.run:
        label, sep, path = spec.rpartition("=")
        if not sep:
            raise UserError(f"--run {spec!r}: expected LABEL=RESULTS_JSON")
        xs, ys = zip(*curve(path, a.split))
        ax.plot(xs, ys, marker="o", label=label)
    ax.axhline(a.goal, color="grey", linestyle="--", label=f"goal {a.goal}×")
    ax.set_xscale("log")
    ax.set_xlabel("training tokens (millions)")
    ax.set_ylabel(f"ELBO ppl / AR ppl ({a.split.removeprefix('validation_')}, held out)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(a.out, dpi=110)
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    main()
