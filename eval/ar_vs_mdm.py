"""MDM-vs-AR validation perplexity over training tokens, from two runs of recipes/train_text.py at equal tokens.

    python eval/ar_vs_mdm.py --ar runs/ar125/trainer_state.json --mdm runs/mdm125/trainer_state.json \\
        --tokens-per-step 65536 --json docs/ablations/ar_vs_mdm_125m.json --png docs/ablations/ar_vs_mdm_125m.png

Prints a markdown table (step, tokens, AR ppl, MDM ppl bound, ratio) and writes the JSON (rows, ratio at the last
common step, best-vs-best ratio) and a PNG of both curves. Files are refused if they exist, unless --overwrite.
"""

from __future__ import annotations

import json
import math

from mdlm.cli import ArgumentParser, UserError, positive_int, refuse_overwrite, run_cli
from mdlm.evaluation.ar_vs_mdm import best, eval_curve, gap


def _history(path: str) -> list[dict]:
    try:
        with open(path, encoding="utf-8") as f:
            state = json.load(f)
    except OSError as e:
        raise UserError(f"cannot read {path}: {e.strerror}") from None
    except json.JSONDecodeError as e:
        raise UserError(f"{path} is not valid JSON ({e.msg})") from None
    hist = state.get("log_history") if isinstance(state, dict) else None
    if not isinstance(hist, list):
        raise UserError(f"{path} holds no log_history (a trainer_state.json is expected)")
    return hist


def _plot(rows: list[dict], png: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 2, figsize=(10, 3.8))
    tok = [r["tokens"] / 1e6 for r in rows]
    ax[0].plot(tok, [r["ar_ppl"] for r in rows], "o-", label="AR (exact)")
    ax[0].plot(tok, [r["mdm_ppl"] for r in rows], "s-", label="MDM (ELBO bound)")
    ax[0].set(xlabel="training tokens (M)", ylabel="validation perplexity", yscale="log", title="validation perplexity")
    ax[0].legend()
    ax[1].plot(tok, [r["ratio"] for r in rows], "d-", color="C2")
    ax[1].axhline(1.3, ls="--", color="grey", label="goal 1.3×")
    ax[1].set(xlabel="training tokens (M)", ylabel="MDM / AR perplexity", title="ratio at equal tokens")
    ax[1].legend()
    fig.tight_layout()
    fig.savefig(png, dpi=120)


@run_cli
def main() -> int:
    p = ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--ar", required=True, help="trainer_state.json of the AR run (--objective ar)")
    p.add_argument("--mdm", required=True, help="trainer_state.json of the MDM run")
    p.add_argument("--tokens-per-step", type=positive_int, required=True, help="global batch × sequence length")
    p.add_argument("--json", help="write the rows and ratios here")
    p.add_argument("--png", help="write the curves here")
    p.add_argument("--overwrite", action="store_true")
    a = p.parse_args()
    for out in (a.json, a.png):
        if out:
            refuse_overwrite(out, a.overwrite)
    ar, mdm = eval_curve(_history(a.ar), a.tokens_per_step), eval_curve(_history(a.mdm), a.tokens_per_step)
    try:
        rows = gap(ar, mdm)
    except ValueError as e:
        raise UserError(str(e)) from None
    print("| step | tokens (M) | AR ppl | MDM ppl ≤ | ratio |\n|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['step']} | {r['tokens'] / 1e6:.1f} | {r['ar_ppl']:.2f} | {r['mdm_ppl']:.2f} | {r['ratio']:.3f} |")
    (bs, bt, bn), (ms, mt, mn) = best(ar), best(mdm)
    summary = {"ratio_last": rows[-1]["ratio"], "last_step": rows[-1]["step"], "tokens_last": rows[-1]["tokens"],
               "ratio_best_vs_best": math.exp(mn - bn),
               "ar_best": {"step": bs, "tokens": bt, "nll": bn}, "mdm_best": {"step": ms, "tokens": mt, "nll": mn}}
    print(f"ratio at the last common step ({rows[-1]['step']}): {summary['ratio_last']:.3f}; best MDM vs best AR: "
          f"{summary['ratio_best_vs_best']:.3f} (AR best at step {bs}, MDM best at step {ms})")
    if a.json:
        with open(a.json, "w", encoding="utf-8") as f:
            json.dump({"rows": rows, **summary}, f, indent=1)
    if a.png:
        _plot(rows, a.png)
    return 0


if __name__ == "__main__":
    main()
