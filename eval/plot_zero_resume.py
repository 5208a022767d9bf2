"""Plot the ZeRO-3 resume check of eval/gpu/zero_scaling.sh: the 2-GPU reference loss curve and each resumed run.

    python eval/plot_zero_resume.py docs/benchmarks/h200x2_zero_resume/zero_resume.json \
        --out docs/benchmarks/h200x2_zero_resume/zero3_resume.png

Left: the loss per step (the checkpoint step K dashed). Right: |resumed − reference| per step on a log scale, the
number a reader checks ("the same loss curve" means this stays at the numerics floor).
"""

from __future__ import annotations

import json

from mdlm.cli import ArgumentParser, UserError, refuse_overwrite, run_cli

LABELS = {
    "resume_1gpu": "1 GPU, consolidate_zero.py (weights + Adam)",
    "resume_weights_only_1gpu": "1 GPU, --weights-only (Adam restarted)",
    "resume_cpu": "CPU, consolidate_zero.py",
    "scratch_1gpu": "1 GPU from step 0 (no checkpoint)",
}


@run_cli
def main() -> int:
    p = ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("json", help="zero_scaling.json written by eval/zero_table.py --logs (with a 'resume' part)")
    p.add_argument("--out", required=True, help="PNG to write (refused if it exists, unless --overwrite)")
    p.add_argument("--overwrite", action="store_true")
    a = p.parse_args()
    refuse_overwrite(a.out, a.overwrite)
    with open(a.json, encoding="utf-8") as f:
        resume = json.load(f).get("resume")
    runs = {k: v for k, v in (resume or {}).items() if k in LABELS and v}
    if not runs:
        raise UserError(f"{a.json} holds no measured resume runs (run eval/gpu/zero_scaling.sh with PARTS=B)")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, ad) = plt.subplots(1, 2, figsize=(11, 4))
    ref_steps = resume["reference_steps"]
    full = runs.get("scratch_1gpu") or next(iter(runs.values()))
    ref = dict(zip(full["steps"], full["reference"]))
    ax.plot(ref_steps, [ref.get(s) for s in ref_steps], "k-", lw=2.5, label="2 GPUs, ZeRO-3 (reference)")
    for name, r in runs.items():
        ax.plot(r["steps"], r["resumed"], "o--", ms=3, label=LABELS[name])
        ad.semilogy(r["steps"], [max(abs(x - y), 1e-6) for x, y in zip(r["resumed"], r["reference"])], "o-", ms=3,
                    label=f"{LABELS[name]}: max {r['max_abs_delta']:.2g}")
    for axis in (ax, ad):
        axis.axvline(resume["k"], color="grey", ls=":", lw=1)
        axis.set_xlabel("optimizer step")
    ax.set_ylabel("training loss (MDM ELBO, nats/token)")
    ad.set_ylabel("|loss − reference|")
    ax.set_title(f"ZeRO-3 checkpoint at step {resume['k']} resumed elsewhere")
    ad.set_title("difference from the 2-GPU curve")
    ax.legend(fontsize=7)
    ad.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(a.out, dpi=110)
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    main()
