"""Text sampling ablation (no retraining): steps × schedule × strategy on a text checkpoint, each row scored
by a judge LM (generative perplexity) and by the unigram entropy of its samples; its table and plot."""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from mdlm.cli import UserError

from .presets import STRATEGIES


def sampling_ablation(
    model_dir: str, judge, *, steps: list[int], schedules: list[str], strategies: list[str], num_samples: int,
    gen_length: int, batch_size: int, seed: int, reference_data: str | None, device: str,
    log: Callable[[str], None] = print,
) -> dict:
    """Generate ``num_samples`` unconditional samples per (schedule, strategy, steps) and score them."""
    from genppl import score_texts
    from sample_text import reference_texts, sample_texts

    import mdlm  # noqa: F401
    from mdlm.metrics.genppl import mean_unigram_entropy
    from mdlm.pipelines import load_for_generation
    from mdlm.sampling import SamplerConfig

    loaded = load_for_generation(model_dir, device=device)
    tok, model = loaded.tokenizer, loaded.model
    if tok is None or tok.mask_token_id is None:
        raise UserError(f"{model_dir} is not a text checkpoint with a [MASK] token")
    ctx = model.config.max_position_embeddings
    if gen_length > ctx:
        raise UserError(f"--gen-length {gen_length} exceeds the model's context of {ctx}")
    rows = []
    if reference_data:
        ref = reference_texts(tok, reference_data, num_samples, gen_length)
        r = score_texts([x["text"] for x in ref], None, judge, batch_size=batch_size)
        rows.append({"schedule": "-", "strategy": f"reference ({reference_data} validation)", "steps": 0, "nfe": 0,
                     **_text_metrics(r, ref, mean_unigram_entropy), "sample_s": 0.0})
        log(_row_line(rows[-1]))
    for schedule in schedules:
        for strategy in strategies:
            for s in steps:
                cfg = SamplerConfig(steps=min(s, gen_length), block_length=None, schedule=schedule, temperature=1.0,
                                    **STRATEGIES[strategy])
                t0 = time.perf_counter()
                samples, nfe = sample_texts(model, tok, cfg, num_samples, gen_length, batch_size=batch_size, seed=seed)
                dt = time.perf_counter() - t0
                r = score_texts([x["text"] for x in samples], None, judge, batch_size=batch_size)
                rows.append({"schedule": schedule, "strategy": strategy, "steps": s, "nfe": nfe,
                             **_text_metrics(r, samples, mean_unigram_entropy), "sample_s": round(dt, 2),
                             "example": samples[0]["text"][:200]})
                log(_row_line(rows[-1]))
    return {"model": model_dir, "judge": judge.name, "num_samples": num_samples, "gen_length": gen_length,
            "temperature": 1.0, "seed": seed, "rows": rows}


def _text_metrics(r: dict, samples: list[dict], entropy_fn) -> dict:
    return {"genppl": r["genppl"], "genppl_sample_mean": r["genppl_sample_mean"], "entropy_judge": r["unigram_entropy"],
            "entropy_model": entropy_fn([x["ids"] for x in samples]), "judge_tokens": r["tokens"],
            "score_s": r["seconds"]}


def _row_line(r: dict) -> str:
    return (f"  {r['schedule']:>7} {r['strategy']:<20} steps {r['steps']:>3}: genppl {r['genppl']:9.2f} | entropy "
            f"{r['entropy_judge']:.3f} (judge) {r['entropy_model']:.3f} (model) | {r['sample_s']:.1f}s + {r['score_s']:.1f}s")


def sampling_markdown(res: dict) -> str:
    lines = [
        f"# Sampling ablation: {res['model']}",
        "",
        f"{res['num_samples']} unconditional samples × {res['gen_length']} tokens per row, token temperature "
        f"{res['temperature']}, one block, seed {res['seed']}. genppl: token-weighted exp(mean NLL) under "
        f"`{os.path.basename(res['judge'])}`; entropy: mean unigram entropy (nats) of each sample's token histogram, "
        "over the judge's tokens and the model's own tokens (MDLM / ReMDM protocol). Low genppl with low entropy "
        "means repetitive samples, not good ones.",
        "",
        "| schedule | strategy | steps | NFE | genppl | entropy (judge tok) | entropy (model tok) | judge tokens | sample s |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in res["rows"]:
        lines.append(f"| {r['schedule']} | {r['strategy']} | {r['steps'] or '-'} | {r['nfe'] or '-'} | {r['genppl']:.2f} | "
                     f"{r['entropy_judge']:.3f} | {r['entropy_model']:.3f} | {r['judge_tokens']} | {r['sample_s']:.1f} |")
    return "\n".join(lines) + "\n"


def sampling_plot(res: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    ref = [r for r in res["rows"] if r["steps"] == 0]
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in res["rows"]:
        if r["steps"]:
            groups.setdefault((r["schedule"], r["strategy"]), []).append(r)
    styles = {"cosine": "-", "linear": "--", "exp": ":"}
    for (sched, strat), rs in groups.items():
        rs = sorted(rs, key=lambda r: r["steps"])
        x = [r["steps"] for r in rs]
        kw = dict(linestyle=styles.get(sched, "-."), marker="o", label=f"{strat}, {sched}")
        axes[0].plot(x, [r["genppl"] for r in rs], **kw)
        axes[1].plot(x, [r["entropy_model"] for r in rs], **kw)
    for r in ref:
        axes[0].axhline(r["genppl"], color="k", lw=0.8, label="real text")
        axes[1].axhline(r["entropy_model"], color="k", lw=0.8, label="real text")
    axes[0].set_yscale("log")
    axes[0].set_ylabel("generative perplexity (judge)")
    axes[1].set_ylabel("unigram entropy, model tokens (nats)")
    for ax in axes:
        ax.set_xscale("log", base=2)
        ax.set_xlabel("sampler steps")
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=7)
    fig.suptitle(f"sampling ablation: {os.path.basename(res['model'].rstrip('/'))}, "
                 f"{res['num_samples']} × {res['gen_length']} tokens", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
