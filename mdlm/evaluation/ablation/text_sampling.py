"""Text sampling ablation (no retraining): steps × schedule × strategy on a text checkpoint, each row scored
by a judge LM (generative perplexity) and by the unigram entropy of its samples; its table and plot.

Without a judge (``judge=None``, ``judge: none`` in the grid, e.g. on a GPU machine that lacks it) every
row's samples go to ``OUT/text_samples/<schedule>_<strategy>_<steps>.jsonl`` (the reference texts to
``reference.jsonl``) and the judge's metrics stay None until :func:`score_sampling` fills them in later
(``--score-samples OUT``), with the same scoring call as in-process, so the numbers are the same."""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from ...cli import UserError
from ..genppl import mean_unigram_entropy
from ..text_samples import read_samples, reference_texts, sample_texts, write_samples
from ..text_scoring import score_texts
from .plotting import step_curves
from .strategies import STRATEGIES

SAMPLES_DIR = "text_samples"  # under OUT: the samples of every row when they are scored later


def sampling_ablation(
    model_dir: str, judge, *, steps: list[int], schedules: list[str], strategies: list[str], num_samples: int,
    gen_length: int, batch_size: int, seed: int, reference_data: str | None, device: str,
    samples_out: str | None = None, log: Callable[[str], None] = print,
) -> dict:
    """Generate ``num_samples`` unconditional samples per (schedule, strategy, steps) and score them.

    ``judge=None``: no scoring; each row's samples are written under ``samples_out`` (the OUT directory, see
    the module docstring), the row names its file (``samples_file``, relative to OUT) and its judge metrics
    are None."""
    if judge is None and samples_out is None:
        raise ValueError("sampling_ablation without a judge needs samples_out (where the samples go)")
    from ...pipelines import load_for_generation
    from ...sampling import SamplerConfig

    loaded = load_for_generation(model_dir, device=device)
    tok, model = loaded.tokenizer, loaded.model
    if tok is None or tok.mask_token_id is None:
        raise UserError(f"{model_dir} is not a text checkpoint with a [MASK] token")
    ctx = model.config.max_position_embeddings
    if gen_length > ctx:
        raise UserError(f"text_sampling.gen_length {gen_length} exceeds the model's context of {ctx}")

    def score_or_save(samples: list[dict], name: str) -> dict:
        """The row's metrics: scored by the judge now, or (no judge) the samples saved for later."""
        if judge is not None:
            r = score_texts([x["text"] for x in samples], None, judge, batch_size=batch_size)
            return _text_metrics(r, samples, mean_unigram_entropy)
        rel = os.path.join(SAMPLES_DIR, f"{name}.jsonl")
        write_samples(os.path.join(samples_out, rel), samples)
        return _text_metrics(None, samples, mean_unigram_entropy) | {"samples_file": rel}

    rows = []
    if reference_data:
        ref = reference_texts(tok, reference_data, num_samples, gen_length)
        rows.append({"schedule": "-", "strategy": f"reference ({reference_data} validation)", "steps": 0, "nfe": 0,
                     **score_or_save(ref, "reference"), "sample_s": 0.0})
        log(_row_line(rows[-1]))
    for schedule in schedules:
        for strategy in strategies:
            for s in steps:
                cfg = SamplerConfig(steps=min(s, gen_length), block_length=None, schedule=schedule, temperature=1.0,
                                    **STRATEGIES[strategy])
                t0 = time.perf_counter()
                samples, nfe = sample_texts(model, tok, cfg, num_samples, gen_length, batch_size=batch_size, seed=seed)
                dt = time.perf_counter() - t0
                rows.append({"schedule": schedule, "strategy": strategy, "steps": s, "nfe": nfe,
                             **score_or_save(samples, f"{schedule}_{strategy}_{s}"), "sample_s": round(dt, 2),
                             "example": samples[0]["text"][:200]})
                log(_row_line(rows[-1]))
    return {"model": model_dir, "judge": judge.name if judge is not None else None, "num_samples": num_samples,
            "gen_length": gen_length, "temperature": 1.0, "seed": seed, "batch_size": batch_size, "rows": rows}


def _text_metrics(r: dict | None, samples: list[dict], entropy_fn) -> dict:
    """A row's metrics from ``score_texts``'s result ``r`` (None: not scored yet, the judge's metrics None)."""
    r = r or {}
    return {"genppl": r.get("genppl"), "genppl_sample_mean": r.get("genppl_sample_mean"),
            "entropy_judge": r.get("unigram_entropy"), "entropy_model": entropy_fn([x["ids"] for x in samples]),
            "judge_tokens": r.get("tokens"), "score_s": r.get("seconds")}


def _fmt(x: float | None, spec: str) -> str:
    """``x`` formatted, or '-' where it is not known (a row not scored yet)."""
    return "-" if x is None else format(x, spec)


def _row_line(r: dict) -> str:
    return (f"  {r['schedule']:>7} {r['strategy']:<20} steps {r['steps']:>3}: genppl {_fmt(r['genppl'], '9.2f')} | "
            f"entropy {_fmt(r['entropy_judge'], '.3f')} (judge) {r['entropy_model']:.3f} (model) | "
            f"{r['sample_s']:.1f}s" + ("" if r["score_s"] is None else f" + {r['score_s']:.1f}s"))


def rows_to_score(res: dict, out: str, force: bool = False) -> list[dict]:
    """The rows of ``res`` (results.json's "sampling") that :func:`score_sampling` would score: those not scored
    yet (every row with ``force``, the ``--rescore`` flag). Raises one UserError naming every missing samples file, before any judge loads."""
    todo = [r for r in res["rows"] if force or r.get("genppl") is None]
    no_file = [f"{r['schedule']}/{r['strategy']}/{r['steps']}" for r in todo if not r.get("samples_file")]
    if no_file:
        raise UserError(f"{out}: row(s) {', '.join(no_file)} have no samples file (scored in-process, samples not "
                        "kept); rerun them with text_sampling.judge=none")
    missing = [r["samples_file"] for r in todo if not os.path.isfile(os.path.join(out, r["samples_file"]))]
    if missing:
        raise UserError(f"{out}: samples file(s) missing: {', '.join(missing)}")
    return todo


def score_sampling(res: dict, out: str, judge, *, force: bool = False, log: Callable[[str], None] = print,
                   after_row: Callable[[], None] | None = None) -> int:
    """Score the saved samples of the rows of ``res`` not scored yet (all with ``force``) with ``judge``, in
    place: the same ``score_texts`` call and batch size as in-process scoring, so the same numbers.
    ``after_row`` runs after every scored row (the runner saves results.json there, so an interrupted
    scoring run keeps the rows it finished). Returns how many rows it scored."""
    todo = rows_to_score(res, out, force)
    prev = res.get("judge")
    if todo and prev and prev != judge.name and len(todo) < len(res["rows"]):
        raise UserError(f"{out}: some rows were scored by {prev}, not {judge.name}; pass --rescore to rescore every row")
    batch_size = int(res.get("batch_size") or 16)
    for row in todo:
        samples = read_samples(os.path.join(out, row["samples_file"]))
        r = score_texts([x["text"] for x in samples], None, judge, batch_size=batch_size)
        row.update(_text_metrics(r, samples, mean_unigram_entropy))
        res["judge"] = judge.name
        log(_row_line(row))
        if after_row is not None:
            after_row()
    return len(todo)


def sampling_markdown(res: dict) -> str:
    judge = f"`{os.path.basename(res['judge'])}`" if res.get("judge") else "the judge"
    lines = [
        f"# Sampling ablation: {res['model']}",
        "",
        f"{res['num_samples']} unconditional samples × {res['gen_length']} tokens per row, token temperature "
        f"{res['temperature']}, one block, seed {res['seed']}. genppl: token-weighted exp(mean NLL) under "
        f"{judge}; entropy: mean unigram entropy (nats) of each sample's token histogram, "
        "over the judge's tokens and the model's own tokens (MDLM / ReMDM protocol). Low genppl with low entropy "
        "means repetitive samples, not good ones.",
        "",
        "| schedule | strategy | steps | NFE | genppl | entropy (judge tok) | entropy (model tok) | judge tokens | sample s |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in res["rows"]:
        lines.append(f"| {r['schedule']} | {r['strategy']} | {r['steps'] or '-'} | {r['nfe'] or '-'} | "
                     f"{_fmt(r['genppl'], '.2f')} | {_fmt(r['entropy_judge'], '.3f')} | {r['entropy_model']:.3f} | "
                     f"{_fmt(r['judge_tokens'], 'd')} | {r['sample_s']:.1f} |")
    unscored = sum(r["genppl"] is None for r in res["rows"])
    if unscored:
        lines += ["", f"{unscored} row(s) not scored yet ('-'): their samples are under `{SAMPLES_DIR}/`; score them "
                  "with `python eval/ablate.py --score-samples OUT`."]
    return "\n".join(lines) + "\n"


def sampling_plot(res: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    ref = [r for r in res["rows"] if r["steps"] == 0]
    for kw, rs in step_curves(res["rows"]):
        x = [r["steps"] for r in rs]
        scored = [r for r in rs if r["genppl"] is not None]  # rows not scored yet have no point
        axes[0].plot([r["steps"] for r in scored], [r["genppl"] for r in scored], **kw)
        axes[1].plot(x, [r["entropy_model"] for r in rs], **kw)
    for r in ref:
        if r["genppl"] is not None:
            axes[0].axhline(r["genppl"], color="k", lw=0.8, label="real text")
        axes[1].axhline(r["entropy_model"], color="k", lw=0.8, label="real text")
    if any(r["genppl"] is not None for r in res["rows"]):
        axes[0].set_yscale("log")  # (a log axis with no data at all warns)
    else:
        axes[0].text(0.5, 0.5, "not scored yet:\npython eval/ablate.py --score-samples OUT", ha="center", va="center",
                     transform=axes[0].transAxes, fontsize=9)
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
