"""Plot the loss / validation-ELBO curve of a run from its trainer_state.json.

    python eval/plot_log.py runs/X/checkpoint-N/trainer_state.json --out docs/benchmarks/loss.png
"""

from __future__ import annotations

import argparse
import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("state")
    p.add_argument("--out", required=True)
    p.add_argument("--title", default="")
    a = p.parse_args()
    hist = json.load(open(a.state))["log_history"]
    tr = [(h["step"], h["loss"]) for h in hist if "loss" in h]
    ev = [(h["step"], h["eval_nll"]) for h in hist if "eval_nll" in h]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(*zip(*tr), label="training loss (weighted, per token)")
    if ev:
        ax.plot(*zip(*ev), "o-", label="validation NELBO (nats/token)")
    ax.set_xlabel("step")
    ax.set_ylabel("nats / token")
    ax.set_title(a.title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(a.out, dpi=120)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
