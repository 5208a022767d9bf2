"""Write the AR → MDM adaptation keys of docs/benchmarks/results.json from the runs' raw files.

The keys ``adapt_elbo_ppl_ratio`` and ``adapt_tokens_per_s`` come from the raw files of the runs in
``docs/backbones/``: every figure, the GPU, its count and the library versions are read from them; only the date of
the run is given (``--date``, the raw files hold none).

    python eval/adapt_results.py --long docs/backbones/h200_adapt_long --date 2026-11-30 --overwrite
    python eval/adapt_results.py --long docs/backbones/h200_adapt_long --date 2026-11-30 --check

``--long``: the folder of ``eval/gpu/adapt_long.sh``'s raw files (long_results_finish.json, elbo_check.jsonl,
extract_lora.json, run.log). The earlier one-call runs (LoRA r=64 and full fine-tuning, 2026-11-29) are kept beside it
as ``earlier_runs`` from their own results files.
"""

from __future__ import annotations

import json
import os
import re
import statistics

from mdlm.cli import ArgumentParser, UserError, run_cli
from mdlm.evaluation.files import write_text

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
RESULTS = os.path.join(ROOT, "docs", "benchmarks", "results.json")
EARLIER = {"lora_r64": "docs/backbones/h200x2_adapt_lora_results.json",
           "full_all_weights": "docs/backbones/h200x2_adapt_full_results.json"}
SPLIT = "validation_wiki"
COMMAND = ("STAGE=train then STAGE=finish bash eval/gpu/adapt_long.sh on one warm machine "
           "(recipes/adapt_ar.py --config recipes/configs/adapt_smollm2_long.yaml; see docs/backbones.md, 'The long run')")


def _load(path: str):
    if not os.path.isfile(path):
        raise UserError(f"missing raw file {path}")
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()] if path.endswith(".jsonl") else json.load(f)


def machine(run_log: str) -> dict:
    """{gpu, gpu_count, torch, transformers} from the lines eval/gpu/adapt_long.sh prints first (nvidia-smi's
    "NAME, MEMORY, DRIVER", the versions line, "stage S: N process(es)")."""
    with open(run_log, encoding="utf-8") as f:
        lines = f.read().splitlines()
    try:
        gpu = next(ln.split(",")[0] for ln in lines if "MiB," in ln)
        versions = next(ln.split() for ln in lines if ln.startswith("datasets "))
        procs = next(int(m.group(1)) for ln in lines if (m := re.search(r"stage \w+: (\d+) process", ln)))
    except StopIteration:
        raise UserError(f"{run_log}: no GPU / versions / stage line (is it eval/gpu/adapt_long.sh's run.log?)") from None
    named = dict(zip(versions[::2], versions[1::2]))
    return {"gpu": gpu, "gpu_count": procs, "torch": named.get("torch"), "transformers": named.get("transformers")}


def _curve(res: dict) -> list[list[float]]:
    return [[p["tokens"], round(p["ratio"], 3)] for p in res["curve"] if p["eval"] == SPLIT]


def _rel(path: str) -> str:
    return os.path.relpath(path, ROOT)


def figures(long_dir: str, date: str) -> dict:
    fin_path = os.path.join(long_dir, "long_results_finish.json")
    fin = _load(fin_path)
    checks = {(os.path.basename(c["model"].rstrip("/")), c["split"]): c for c in _load(os.path.join(long_dir, "elbo_check.jsonl"))}
    ext = _load(os.path.join(long_dir, "extract_lora.json"))
    full_row, ext_row = checks[("run_long", SPLIT)], checks[("lora64", SPLIT)]
    earlier = {}
    for name, path in EARLIER.items():
        r = _load(os.path.join(ROOT, path))
        earlier[name] = {"value": round(r["ratio_final"][SPLIT], 3), "train_tokens": r["train_tokens"],
                         "tokens_per_s": round(r["tokens_per_s_mean"]), "source": path}
    logs = [x for x in fin["log_history"] if "tokens_per_s" in x and not x.get("warmup")]
    stack = machine(os.path.join(long_dir, "run.log")) | {"date": date}
    ratio = {
        "value": round(fin["ratio_final"][SPLIT], 3),
        "unit": "ELBO perplexity of the adapted MDM / exact perplexity of the AR source, held-out wiki (53,760 tokens)",
        "goal": "<= 1.5",
        "model": "SmolLM2-135M-Instruct (Q4_1 GGUF, de-quantised) -> MDM, Dream-aligned, full fine-tuning of the seven "
                 "projections + the [MASK] row, cosine schedule run to its end",
        "elbo_ppl": round(fin["final"][f"eval_{SPLIT}_ppl"], 2),
        "ar_ppl": round(fin["ar_ppl"][SPLIT], 2),
        "train_tokens": fin["train_tokens"],
        "curve_tokens_ratio": _curve(fin),
        "other_sets": {k.removeprefix("validation_"): round(v, 3) for k, v in fin["ratio_final"].items() if k != SPLIT},
        "persisted_extraction": {
            "value": round(ext_row["ratio"], 3),
            "full_finetune_same_rows_and_masks": round(full_row["ratio"], 3),
            "rank": ext["rank"], "kept_energy_mean": round(ext["kept_energy_mean"], 3),
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
    speed = {
        "value": round(fin["tokens_per_s_mean"]),
        "unit": "training tokens/s, one H200, full fine-tuning of the projections, batch 32 x 512, bf16 autocast over "
                "fp32 weights, LM head at masked positions only (mean of the logged intervals after warm-up)",
        "mfu_pct": round(100 * statistics.fmean(x["mfu"] for x in logs), 1),
        "peak_tflops": 772,
        "earlier_runs": {k: v["tokens_per_s"] for k, v in earlier.items()},
        **stack, "command": COMMAND, "source": _rel(fin_path) + " (tokens_per_s_mean; mfu of log_history)",
    }
    return {"adapt_elbo_ppl_ratio": ratio, "adapt_tokens_per_s": speed}


@run_cli
def main(argv=None) -> int:
    p = ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--long", required=True, help="folder of eval/gpu/adapt_long.sh's raw files")
    p.add_argument("--date", required=True, help="the day the run was made (YYYY-MM-DD)")
    p.add_argument("--out", default=RESULTS)
    p.add_argument("--check", action="store_true", help="exit 1 if --out does not hold these figures")
    p.add_argument("--overwrite", action="store_true", help="replace the two keys in an existing --out")
    a = p.parse_args(argv)
    new = figures(a.long, a.date)
    old = _load(a.out) if os.path.isfile(a.out) else {}
    if a.check:
        same = all(old.get(k) == v for k, v in new.items())
        print("adaptation keys are current" if same else f"{a.out}: adaptation keys differ: rerun without --check")
        return 0 if same else 1
    if any(k in old for k in new) and not a.overwrite:
        raise UserError(f"{a.out} already has {', '.join(k for k in new if k in old)}; pass --overwrite to replace them")
    write_text(a.out, json.dumps(old | new, indent=1, ensure_ascii=False) + "\n")
    for k, v in new.items():
        print(f"{k}: {v['value']} ({v['unit']})")
    return 0


if __name__ == "__main__":
    main()
