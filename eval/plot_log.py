"""Plot the loss / validation-ELBO curve of a run from its trainer_state.json.

    python eval/plot_log.py runs/X/checkpoint-N/trainer_state.json --out docs/benchmarks/loss.png
"""

from __future__ import annotations

import json

from mdlm.cli import ArgumentParser, UserError, refuse_overwrite, run_cli


@run_cli
def main() -> int:
    p = ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("state", help="trainer_state.json (or a log_history.json list)")
    p.add_argument("--out", required=True, help="PNG to write (refused if it exists, unless --overwrite)")
    p.add_argument("--title", default="")
    p.add_argument("--overwrite", action="store_true")
    a = p.parse_args()
    refuse_overwrite(a.out, a.overwrite)
    with open(a.state, encoding="utf-8") as f:
        try:
            state = json.load(f)
        except json.JSONDecodeError as e:
            raise UserError(f"{a.state} is not valid JSON ({e.msg})") from None
    hist = state["log_history"] if isinstance(state, dict) and "log_history" in state else state
    if not isinstance(hist, list):
        raise UserError(f"{a.state} holds no log_history")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tr = [(h["step"], h["loss"]) for h in hist if "loss" in h]
    if not tr:
        raise UserError(f"{a.state}: no training loss in its log history")
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
    return 0


if __name__ == "__main__":
    main()
