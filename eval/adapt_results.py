"""Write the AR → MDM adaptation and SFT-content keys of docs/benchmarks/results.json from the runs' raw files.

The keys ``adapt_elbo_ppl_ratio`` and ``adapt_tokens_per_s`` (``--long``) and ``sft_definition_content_pct`` and
``sft_synonym_exact_pct`` (``--sft``) come from the raw files of the runs in ``docs/backbones/``: every figure, the
GPU, its count and the library versions are read from them; only the date of the run is given (``--date``, the raw
files hold none).

    python eval/adapt_results.py --wsd docs/backbones/h200_adapt_wsd_compile \
        --config recipes/configs/adapt_smollm2_wsd_compile.yaml --date 2026-12-01 --overwrite        # current keys
    python eval/adapt_results.py --wsd docs/backbones/h200_adapt_wsd_compile \
        --config recipes/configs/adapt_smollm2_wsd_compile.yaml --date 2026-12-01 --check
    # the first (eager) WSD run's keys, now under earlier_runs of the compiled run's:
    python eval/adapt_results.py --wsd docs/backbones/h200_adapt_wsd --date 2026-12-01 --out /tmp/wsd_keys.json
    python eval/adapt_results.py --sft docs/backbones/h200_sft_long --date 2026-11-30 --overwrite
    # until 2026-12-01 the two adaptation keys were the long run's (now under earlier_runs of the --wsd keys):
    python eval/adapt_results.py --long docs/backbones/h200_adapt_long --date 2026-11-30 --out /tmp/long_keys.json

``--sft``: the folder of ``eval/gpu/sft_smollm2.sh``'s raw files (sft_content.json of eval/sft_content_eval.py,
run.log, eval_metrics.json).

``--long``: the folder of ``eval/gpu/adapt_long.sh``'s raw files (long_results_finish.json, elbo_check.jsonl,
extract_lora.json, run.log). The earlier one-call runs (LoRA r=64 and full fine-tuning, 2026-11-29) are kept beside it
as ``earlier_runs`` from their own results files.

``--wsd``: the folder of a warmup-stable-decay run's raw files (``eval/gpu/adapt_long.sh`` with ``CFG=`` its config
(``--config``, which also says how it compiled), train stages then a decay; files prefixed by their call): the decay
launch's ``*long_results_decay.json`` (its log history holds every launch) and the same call's ``*run.log``. It
writes the same two keys, with the earlier runs under ``earlier_runs`` (the first WSD run,
``docs/backbones/h200_adapt_wsd``, when the folder is a later one; the long run, ``docs/backbones/h200_adapt_long``;
the one-call runs), and as ``persisted_model`` the run's own rank-64 extraction when the folder holds its
``*elbo_check.jsonl`` and ``*extract_lora.json``, else the long run's (``--long`` calls it ``persisted_extraction``).
``--long`` and ``--wsd`` write the same keys: give one.
"""

from __future__ import annotations

import json
import os
import re
import statistics

from mdlm.cli import ArgumentParser, UserError, run_cli
from mdlm.evaluation.files import write_text
from mdlm.training.throughput import steady_intervals

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
RESULTS = os.path.join(ROOT, "docs", "benchmarks", "results.json")
EARLIER = {"lora_r64": "docs/backbones/h200x2_adapt_lora_results.json",
           "full_all_weights": "docs/backbones/h200x2_adapt_full_results.json"}
SPLIT = "validation_wiki"
UNIT = "ELBO perplexity of the adapted MDM / exact perplexity of the AR source, held-out wiki (53,760 tokens)"
COMMAND = ("STAGE=train then STAGE=finish bash eval/gpu/adapt_long.sh on one warm machine "
           "(recipes/adapt_ar.py --config recipes/configs/adapt_smollm2_long.yaml; see docs/backbones.md, 'The long run')")


def _load(path: str):
    if not os.path.isfile(path):
        raise UserError(f"missing raw file {path}")
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()] if path.endswith(".jsonl") else json.load(f)


def machine(run_log: str) -> dict:
    """{gpu, gpu_count, torch, transformers} from the lines eval/gpu/adapt_long.sh / sft_smollm2.sh print (nvidia-smi's
    "NAME, MEMORY, DRIVER", the versions line, "stage S: N process(es)" or the single-GPU SFT launch line)."""
    with open(run_log, encoding="utf-8") as f:
        lines = f.read().splitlines()
    try:
        gpu = next(ln.split(",")[0] for ln in lines if "MiB," in ln)
        versions = next(ln.split() for ln in lines if ln.startswith("datasets "))
    except StopIteration:
        raise UserError(f"{run_log}: no GPU / versions line (is it an eval/gpu script's run.log?)") from None
    try:
        procs = next(int(m.group(1)) for ln in lines if (m := re.search(r"stage \w+: (\d+) process", ln)))
    except StopIteration:
        procs = next((1 for ln in lines if "CUDA_VISIBLE_DEVICES=0 python3" in ln), None)  # sft_smollm2.sh, DS=none
    if procs is None:
        raise UserError(f"{run_log}: no 'stage S: N process' or single-GPU SFT line: how many GPUs ran is unknown")
    named = dict(zip(versions[::2], versions[1::2]))
    return {"gpu": gpu, "gpu_count": procs, "torch": named.get("torch"), "transformers": named.get("transformers")}


def _curve(res: dict) -> list[list[float]]:
    return [[p["tokens"], round(p["ratio"], 3)] for p in res["curve"] if p["eval"] == SPLIT]


def _rel(path: str) -> str:
    return os.path.relpath(path, ROOT)


def _ratio_fields(res: dict) -> dict:
    """The ratio key's figures read from one results file of recipes/adapt_ar.py (its last launch)."""
    return {"value": round(res["ratio_final"][SPLIT], 3), "unit": UNIT, "goal": "<= 1.5",
            "elbo_ppl": round(res["final"][f"eval_{SPLIT}_ppl"], 2), "ar_ppl": round(res["ar_ppl"][SPLIT], 2),
            "train_tokens": res["train_tokens"], "curve_tokens_ratio": _curve(res),
            "other_sets": {k.removeprefix("validation_"): round(v, 3) for k, v in res["ratio_final"].items() if k != SPLIT}}


def _speed(res: dict, res_path: str, unit: str, earlier: dict, stack: dict, command: str) -> dict:
    """The tokens/s key: the results file's mean over the steady intervals, MFU from its log history."""
    return {"value": round(res["tokens_per_s_mean"]), "unit": unit,
            "mfu_pct": round(100 * statistics.fmean(x["mfu"] for x in steady_intervals(res["log_history"])), 1),
            "peak_tflops": 772, "earlier_runs": earlier, **stack, "command": command,
            "source": _rel(res_path) + " (tokens_per_s_mean; mfu of log_history)"}


def figures(long_dir: str, date: str) -> dict:
    fin_path = os.path.join(long_dir, "long_results_finish.json")
    fin = _load(fin_path)
    scores = _extraction_scores(os.path.join(long_dir, "elbo_check.jsonl"), os.path.join(long_dir, "extract_lora.json"))
    earlier = {}
    for name, path in EARLIER.items():
        r = _load(os.path.join(ROOT, path))
        earlier[name] = {"value": round(r["ratio_final"][SPLIT], 3), "train_tokens": r["train_tokens"],
                         "tokens_per_s": round(r["tokens_per_s_mean"]), "source": path}
    stack = machine(os.path.join(long_dir, "run.log")) | {"date": date}
    ratio = {
        **_ratio_fields(fin),
        "model": "SmolLM2-135M-Instruct (Q4_1 GGUF, de-quantised) -> MDM, Dream-aligned, full fine-tuning of the seven "
                 "projections + the [MASK] row, cosine schedule run to its end",
        "persisted_extraction": {
            **scores,
            "note": "the model that outlives the GPU: a rank-64 LoRA extraction of the full fine-tune "
                    "(recipes/extract_lora.py); both scored by eval/adapt_elbo.py with 8 samples per row, same masks",
            "sha256": "docs/backbones/smollm2_mdm_full_r64.sha256",
        },
        "earlier_runs": earlier,
        **stack, "command": COMMAND,
        "source": ", ".join(_rel(os.path.join(long_dir, f)) for f in ("long_results_finish.json", "elbo_check.jsonl", "run.log",
                                                                      "extract_lora.json")),
        "note": "the MDM trained on the same corpora's training split (held-out documents, in-domain); the source did "
                "not. ELBO = 8-sample Monte-Carlo upper bound.",
    }
    speed = _speed(fin, fin_path, "training tokens/s, one H200, full fine-tuning of the projections, batch 32 x 512, "
                   "bf16 autocast over fp32 weights, LM head at masked positions only (mean of the logged intervals "
                   "after warm-up)", {k: v["tokens_per_s"] for k, v in earlier.items()}, stack, COMMAND)
    return {"adapt_elbo_ppl_ratio": ratio, "adapt_tokens_per_s": speed}


WSD_DIR_LONG, WSD_LONG_DATE = "docs/backbones/h200_adapt_long", "2026-11-30"  # the long run: an earlier run of --wsd
# the first WSD run (eager, 2026-12-01): an earlier run of any later --wsd folder
WSD_DIR_EAGER, WSD_EAGER_DATE, WSD_EAGER_CONFIG = ("docs/backbones/h200_adapt_wsd", "2026-12-01",
                                                   "recipes/configs/adapt_smollm2_wsd.yaml")


def wsd_command(config: str) -> str:
    return (f"CFG={config} bash eval/gpu/adapt_long.sh with STAGE=train (one or more launches), then STAGE=decay, on "
            "one warm machine (docs/backbones.md, 'The WSD run' / 'The compiled WSD run')")


def _one(folder: str, suffix: str, required: bool = True) -> str | None:
    found = sorted(f for f in os.listdir(folder) if f.endswith(suffix)) if os.path.isdir(folder) else []
    if len(found) != 1 and (required or found):
        raise UserError(f"{folder}: expected one *{suffix}, found {len(found)}")
    return os.path.join(folder, found[0]) if found else None


def _compile_note(config: str) -> str:
    """How the config compiles the model (its torch_compile / regional_compile keys)."""
    import yaml

    path = os.path.join(ROOT, config)
    if not os.path.isfile(path):
        raise UserError(f"--config {config}: no such file (a path relative to the repository root)")
    with open(path, encoding="utf-8") as f:
        cfg = yaml.safe_load(f) or {}
    if not cfg.get("torch_compile"):
        return "eager (no torch.compile)"
    return "torch.compile, " + ("regional (one decoder layer compiled, reused)" if cfg.get("regional_compile")
                                else "the whole model in one graph")


def _own_extraction(wsd_dir: str) -> dict | None:
    """This run's rank-64 extraction, scored against its full fine-tune (elbo_check.jsonl), when the run made one."""
    check_path, ext_path = _one(wsd_dir, "elbo_check.jsonl", False), _one(wsd_dir, "extract_lora.json", False)
    if check_path is None or ext_path is None:
        return None
    sha = _manifest(_one(wsd_dir, ".sha256", False))
    return {**_extraction_scores(check_path, ext_path),
            "note": "the model that outlives the GPU: this run's rank-64 LoRA extraction of the full fine-tune "
                    "(recipes/extract_lora.py); both scored by eval/adapt_elbo.py with 8 samples per row, same masks",
            "sha256": _rel(sha) if sha else None, "source": ", ".join(_rel(p) for p in (check_path, ext_path))}


def _extraction_scores(check_path: str, ext_path: str) -> dict:
    """{value, full_finetune_same_rows_and_masks, rank, kept_energy_mean} of a run's rank-r extraction: its wiki ratio
    and the full fine-tune's on the same rows and masks (elbo_check.jsonl: the extraction's row is the model dir
    ``lora64``), and the extraction's rank and kept energy (extract_lora.json)."""
    rows = [c for c in _load(check_path) if c["split"] == SPLIT]
    ext = next((c for c in rows if os.path.basename(c["model"].rstrip("/")) == "lora64"), None)
    full = next((c for c in rows if c is not ext), None)
    if ext is None or full is None:
        raise UserError(f"{check_path}: expected a {SPLIT} row for the extraction (lora64) and one for the full model")
    meta = _load(ext_path)
    return {"value": round(ext["ratio"], 3), "full_finetune_same_rows_and_masks": round(full["ratio"], 3),
            "rank": meta["rank"], "kept_energy_mean": round(meta["kept_energy_mean"], 3)}


def _manifest(raw: str | None) -> str | None:
    """The manifest in docs/backbones/ naming the same tar (same whole-file SHA-256) as the GPU's raw one — the parts
    are renamed when kept — else the raw one."""
    if raw is None:
        return None
    with open(raw, encoding="utf-8") as f:
        tar_sha = next((ln.split()[0] for ln in f if ln.strip().endswith(".tar")), None)
    docs = os.path.join(ROOT, "docs", "backbones")
    for name in sorted(os.listdir(docs)):
        if name.endswith(".sha256") and tar_sha is not None:
            with open(os.path.join(docs, name), encoding="utf-8") as f:
                if any(ln.split()[:1] == [tar_sha] for ln in f):
                    return os.path.join(docs, name)
    return raw


def wsd_figures(wsd_dir: str, date: str, config: str = WSD_EAGER_CONFIG) -> dict:
    """The two adaptation keys from a WSD run; the earlier runs (the first WSD run when this is a later one, the long
    run, the one-call runs) go under ``earlier_runs``."""
    res_path = _one(wsd_dir, "long_results_decay.json")
    res = _load(res_path)
    run_log = res_path.removesuffix("long_results_decay.json") + "run.log"  # the decay launch's call
    if not os.path.isfile(run_log):
        raise UserError(f"missing raw file {run_log}")
    long = figures(os.path.join(ROOT, WSD_DIR_LONG), WSD_LONG_DATE)
    stack = machine(run_log) | {"date": date}
    lr = long["adapt_elbo_ppl_ratio"]
    earlier = {"long_cosine_batch32": {"value": lr["value"], "train_tokens": lr["train_tokens"],
                                       "tokens_per_s": long["adapt_tokens_per_s"]["value"], "source": lr["source"].split(",")[0]},
               **lr["earlier_runs"]}
    speeds_before = {"long_cosine_batch32": long["adapt_tokens_per_s"]["value"],
                     **long["adapt_tokens_per_s"]["earlier_runs"]}
    persisted = {**lr["persisted_extraction"],
                 "note": "this run's weights did not leave the GPU machine (no device time was left for the "
                         "extraction); the model that outlives the GPU is still the long run's rank-64 LoRA "
                         "extraction (recipes/extract_lora.py), scored against that run's full fine-tune by "
                         "eval/adapt_elbo.py with 8 samples per row, same masks"}
    eager_dir = os.path.join(ROOT, WSD_DIR_EAGER)
    if os.path.abspath(wsd_dir) != os.path.abspath(eager_dir):  # a later WSD run: the first one is an earlier run
        first = wsd_figures(eager_dir, WSD_EAGER_DATE, WSD_EAGER_CONFIG)
        fr, fs = first["adapt_elbo_ppl_ratio"], first["adapt_tokens_per_s"]
        earlier = {"wsd_eager_batch64": {"value": fr["value"], "train_tokens": fr["train_tokens"],
                                         "tokens_per_s": fs["value"], "mfu_pct": fs["mfu_pct"],
                                         "source": fr["source"].split(",")[0]}, **earlier}
        speeds_before = {"wsd_eager_batch64": fs["value"], **speeds_before}
    persisted = _own_extraction(wsd_dir) or persisted
    source = ", ".join(_rel(p) for p in (res_path, run_log))
    with open(run_log, encoding="utf-8") as f:
        plan = re.search(r"decay plan: max_steps (\d+) num_decay_steps (\d+)", f.read())
    if not plan:
        raise UserError(f"{run_log}: no 'decay plan:' line (was the last stage STAGE=decay?)")
    planned, decay = int(plan.group(1)), plan.group(2)
    end = (f"the decay (cosine, last {decay} of {planned} steps) planned from the measured speed and run to its end"
           if res["steps"] == planned else
           f"the decay (cosine, last {decay} of {planned} steps) planned from the measured speed, cut short by the "
           f"time budget at step {res['steps']}")
    tokens_per_step = res["train_tokens"] // res["steps"]
    peak_lr = max(h["learning_rate"] for h in res["log_history"] if "learning_rate" in h)
    compiled = _compile_note(config)
    ratio = {
        **_ratio_fields(res),
        "model": "SmolLM2-135M-Instruct (Q4_1 GGUF, de-quantised) -> MDM, Dream-aligned, full fine-tuning of the seven "
                 f"projections + the [MASK] row, {tokens_per_step:,} tokens a step, peak lr {peak_lr:g} "
                 "warmup-stable-decay, " + end,
        "persisted_model": persisted,
        "earlier_runs": earlier, **stack, "command": wsd_command(config), "source": source, "note": lr["note"],
    }
    speed = _speed(res, res_path, f"training tokens/s, one H200, full fine-tuning of the projections, "
                   f"{tokens_per_step:,} tokens a step, bf16 autocast over fp32 weights, {compiled}, LM head at masked "
                   "positions only (mean of the logged intervals after warm-up, every launch)",
                   speeds_before, stack, wsd_command(config))
    return {"adapt_elbo_ppl_ratio": ratio, "adapt_tokens_per_s": speed}


SFT_COMMAND = ("DS=none SFT_BUDGET=220 DEADLINE=575 ACFG=recipes/configs/adapt_smollm2_long.yaml "
               "PARTS=/tmp/adapt_parts/smollm2_mdm_full_r64 bash eval/gpu/sft_smollm2.sh, then eval/sft_content_eval.py "
               "--num-per-task 200 on the same machine (docs/backbones.md, 'SFT on the long run's base')")


def _share(hits: dict) -> dict:
    """{value (%), hits, n} of one model's content metric ({share, hits, n} in sft_content.json)."""
    return {"value": round(100 * hits["share"], 1), "hits": hits["hits"], "n": hits["n"]}


def sft_figures(sft_dir: str, date: str) -> dict:
    """The two SFT content keys from eval/sft_content_eval.py's sft_content.json (every row of its three models)."""
    content = _load(os.path.join(sft_dir, "sft_content.json"))
    m = content["metrics"]
    stack = machine(os.path.join(sft_dir, "run.log")) | {"date": date}
    out = {}
    for key, metric, unit in (
            ("sft_definition_content_pct", "definition_content",
             "% of held-out WordNet words whose definition names the gloss's head word or a synonym"),
            ("sft_synonym_exact_pct", "synonym_exact", "% of held-out WordNet words: the answer is one of the synset's "
                                                       "lemmas")):
        out[key] = {**_share(m["SFT MDM"][metric]), "unit": unit, "base_adapted_mdm": _share(m["adapted MDM"][metric]),
                    "ar_source": _share(m["AR source"][metric]),
                    "mean_answer_words": {k: round(v["mean_answer_words"], 1) for k, v in m.items()},
                    "response_elbo_nats": {k: round(v["response_elbo_nats"], 3) for k, v in m.items()
                                           if v["response_elbo_nats"] is not None},
                    "base": "the long run's adapted MDM (rank-64 extraction, docs/backbones.md 'The long run')",
                    "sampler": content["sampler"], **stack, "command": SFT_COMMAND,
                    "source": _rel(os.path.join(sft_dir, "sft_content.json"))}
    return out


@run_cli
def main(argv=None) -> int:
    p = ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--long", help="folder of eval/gpu/adapt_long.sh's raw files")
    p.add_argument("--sft", help="folder of eval/gpu/sft_smollm2.sh's raw files (with sft_content.json)")
    p.add_argument("--wsd", help="folder of the WSD run's raw files (replaces --long's keys; the long run becomes earlier)")
    p.add_argument("--config", default=None, help="with --wsd: the run's config (its command, how it compiled); "
                   f"may be left out for {WSD_DIR_EAGER} ({WSD_EAGER_CONFIG})")
    p.add_argument("--date", required=True, help="the day the run was made (YYYY-MM-DD)")
    p.add_argument("--out", default=RESULTS, help="results file to write (default docs/benchmarks/results.json)")
    p.add_argument("--check", action="store_true", help="exit 1 if --out does not hold these figures")
    p.add_argument("--overwrite", action="store_true", help="replace these keys in an existing --out")
    a = p.parse_args(argv)
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", a.date):
        raise UserError(f"--date must be YYYY-MM-DD, got {a.date!r}")
    if not (a.long or a.sft or a.wsd):
        raise UserError("give --long, --wsd and/or --sft")
    if a.long and a.wsd:
        raise UserError("--long and --wsd write the same keys: give one")
    if a.config and not a.wsd:
        raise UserError("--config goes with --wsd")
    if a.wsd and a.config is None:
        if os.path.abspath(a.wsd) != os.path.abspath(os.path.join(ROOT, WSD_DIR_EAGER)):
            raise UserError(f"--wsd {a.wsd}: give the run's --config (e.g. recipes/configs/adapt_smollm2_wsd_compile.yaml)")
        a.config = WSD_EAGER_CONFIG
    new = ((figures(a.long, a.date) if a.long else {}) | (wsd_figures(a.wsd, a.date, a.config) if a.wsd else {})
           | (sft_figures(a.sft, a.date) if a.sft else {}))
    old = _load(a.out) if os.path.isfile(a.out) else {}
    if a.check:
        same = all(old.get(k) == v for k, v in new.items())
        print("the keys are current" if same else f"{a.out}: the keys differ: rerun without --check")
        return 0 if same else 1
    if any(k in old for k in new) and not a.overwrite:
        raise UserError(f"{a.out} already has {', '.join(k for k in new if k in old)}; pass --overwrite to replace them")
    write_text(a.out, json.dumps(old | new, indent=1, ensure_ascii=False) + "\n")
    for k, v in new.items():
        print(f"{k}: {v['value']} ({v['unit']})")
    return 0


if __name__ == "__main__":
    main()
