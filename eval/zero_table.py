"""The ZeRO scaling benchmark's logs (eval/gpu/zero_scaling.sh) → one JSON with the docs/benchmarks/results.json
entries (zero{1,2,3}_scaling_2gpu, zero3_resume_1gpu_loss_delta) and a markdown table; or, from that JSON, the
memory / tokens-per-GPU table of the 125M / 350M / 1B configs at 1, 2, 8, 64 GPUs (docs/training_at_scale.md).

    python eval/zero_table.py --logs LOGS --k 10 --out zero_scaling.json --markdown zero_scaling.md --command "..."
    python eval/zero_table.py --plan zero_scaling.json --markdown plan.md      # the extrapolation table
"""

from __future__ import annotations

import glob
import json
import os
import re
import sys
import time
from itertools import pairwise

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from mdlm.cli import ArgumentParser, UserError, refuse_overwrite, run_cli
from mdlm.training.scaling import steady_tokens_per_s

GIB = 1024**3
THROUGHPUT = {"plain_1gpu": (None, 1), "zero2_1gpu": (2, 1), "zero1_2gpu": (1, 2), "zero2_2gpu": (2, 2),
              "zero3_2gpu": (3, 2)}
RESUMES = ("resume_1gpu", "resume_weights_only_1gpu", "resume_cpu", "scratch_1gpu")  # scratch: no checkpoint
LABEL = {"resume_1gpu": "1 GPU, consolidate_zero.py (fp32 weights + Adam state)",
         "resume_weights_only_1gpu": "1 GPU, --weights-only (zero_to_fp32, Adam restarted)",
         "resume_cpu": "CPU, consolidate_zero.py", "scratch_1gpu": "1 GPU from step 0, no checkpoint (numerics only)"}
_RECIPE_LINE = re.compile(r"^step (\d+): ([\d,.]+) tokens/s", re.MULTILINE)


def load_records(logs: str, name: str) -> list[dict]:
    """The per-rank records of run ``name`` (rank order); [] when the run left none."""
    files = sorted(glob.glob(os.path.join(logs, name, "rank*.json")), key=lambda p: int(re.findall(r"\d+", p)[-1]))
    out = []
    for f in files:
        with open(f, encoding="utf-8") as fh:
            out.append(json.load(fh))
    return out


def smi_peaks(path: str) -> dict[int, int]:
    """Peak nvidia-smi memory.used (MiB) per GPU index from ``index, MiB`` lines."""
    peaks: dict[int, int] = {}
    if not os.path.isfile(path):
        return peaks
    with open(path, encoding="utf-8") as f:
        for line in f:
            parts = [p.strip() for p in line.split(",")]
            if len(parts) == 2 and parts[0].isdigit() and parts[1].isdigit():
                peaks[int(parts[0])] = max(peaks.get(int(parts[0]), 0), int(parts[1]))
    return peaks


def recipe_log_tokens_per_s(log: str) -> float | None:
    """Steady tokens/s (all ranks) from the recipe's own 'step N: X tokens/s' lines, first one dropped:
    total tokens over total time, i.e. the step-weighted harmonic mean of the intervals."""
    if not os.path.isfile(log):
        return None
    with open(log, encoding="utf-8") as f:
        hits = [(int(s), float(v.replace(",", ""))) for s, v in _RECIPE_LINE.findall(f.read())]
    steps = [b[0] - a[0] for a, b in pairwise(hits)]
    if not steps:
        return None
    return sum(steps) / sum(n / tps for n, (_, tps) in zip(steps, hits[1:]))


def run_summary(logs: str, name: str) -> dict | None:
    """Steady tokens/s per GPU (mean over ranks), steps counted, peak memory per rank and per GPU (nvidia-smi)."""
    recs = load_records(logs, name)
    if not recs:
        return None
    per_rank = [steady_tokens_per_s(r["log_times"], r["tokens_per_step"]) for r in recs]
    tps = sum(t for t, _ in per_rank) / len(per_rank)
    return {"world_size": recs[0]["world_size"], "steady_steps": per_rank[0][1],
            "tokens_per_s_per_gpu": round(tps, 1), "tokens_per_s_total": round(tps * len(recs), 1),
            "recipe_log_tokens_per_s_total": recipe_log_tokens_per_s(os.path.join(logs, f"{name}.log")),
            "peak_allocated_gib_per_rank": [round(r["peak_allocated"] / GIB, 2) if r["peak_allocated"] else None
                                            for r in recs],
            "nvidia_smi_peak_mib_per_gpu": smi_peaks(os.path.join(logs, f"{name}.smi")),
            "tokens_per_step_per_gpu": recs[0]["tokens_per_step"], "device": recs[0]["device"]}


def loss_delta(ref: dict[int, float], got: dict[int, float], after: int) -> dict | None:
    """max |loss_got − loss_ref| over the steps > ``after`` logged by both."""
    steps = sorted(s for s in got if s > after and s in ref)
    if not steps:
        return None
    return {"max_abs_delta": max(abs(got[s] - ref[s]) for s in steps), "steps": steps,
            "reference": [ref[s] for s in steps], "resumed": [got[s] for s in steps]}


def resume_summary(logs: str, k: int) -> dict:
    ref_recs = load_records(logs, "zero3_ref")
    ref = {int(s): v for s, v in ref_recs[0]["loss"]} if ref_recs else {}
    out = {"k": k, "reference_steps": sorted(ref)}
    for name in RESUMES:
        recs = load_records(logs, name)
        after = 0 if name == "scratch_1gpu" else k  # the run from step 0: every step is compared
        out[name] = loss_delta(ref, {int(s): v for s, v in recs[0]["loss"]}, after) if recs and ref else None
    return out


def results_entries(runs: dict, resume: dict, meta: dict) -> dict:
    """The docs/benchmarks/results.json entries."""
    base = runs.get("plain_1gpu") or {}
    z2_1 = runs.get("zero2_1gpu") or {}
    out = {}
    for z in (1, 2, 3):
        r = runs.get(f"zero{z}_2gpu")
        if r is None or not base:
            continue
        out[f"zero{z}_scaling_2gpu"] = {
            "value": round(r["tokens_per_s_total"] / base["tokens_per_s_per_gpu"], 3),
            "unit": "x tokens/s, 2 GPUs together over 1 GPU plain (one process, no DeepSpeed), same micro-batch per GPU",
            "scaling_vs_zero2_1gpu": round(r["tokens_per_s_total"] / z2_1["tokens_per_s_per_gpu"], 3) if z2_1 else None,
            "steps": r["steady_steps"], "tokens_per_s_per_gpu": r["tokens_per_s_per_gpu"],
            "baseline_1gpu_tokens_per_s": base["tokens_per_s_per_gpu"],
            "peak_allocated_gib_per_gpu": r["peak_allocated_gib_per_rank"],
            "nvidia_smi_peak_mib_per_gpu": r["nvidia_smi_peak_mib_per_gpu"], **meta}
    r1, w1, cpu, scratch = (resume.get(n) for n in RESUMES)
    if r1:
        out["zero3_resume_1gpu_loss_delta"] = {
            "value": r1["max_abs_delta"], "unit": "max |loss - 2-GPU reference loss| over the resumed steps", "steps": r1["steps"], "k": resume["k"],
            "weights_only_delta": w1["max_abs_delta"] if w1 else None,  # zero_to_fp32 + restarted Adam, same steps
            "numerics_floor": scratch["max_abs_delta"] if scratch else None,  # 1 GPU from step 0, no checkpoint
            "how": "recipes/consolidate_zero.py (DeepSpeed ds_to_universal: fp32 weights + Adam state), 1 GPU, "
                   "gradient accumulation 2 = the 2-GPU global batch", **meta}
    if cpu:
        out["zero3_resume_cpu_loss_delta"] = {"value": cpu["max_abs_delta"], "steps": cpu["steps"], "k": resume["k"],
                                              **meta}
    return out


def markdown(runs: dict, resume: dict, entries: dict) -> str:
    lines = [("| run | GPUs | steady steps | tokens/s per GPU | scaling vs 1 GPU | recipe log tokens/s (all GPUs) | "
              "peak alloc GiB/GPU | nvidia-smi peak MiB |"), "|---|---|---|---|---|---|---|---|"]
    for name, (z, _) in THROUGHPUT.items():
        r = runs.get(name)
        if r is None:
            lines.append(f"| {name} | - | missing | | | | | |")
            continue
        e = entries.get(f"zero{z}_scaling_2gpu") if name.endswith("2gpu") else None
        lines.append(f"| {name} | {r['world_size']} | {r['steady_steps']} | {r['tokens_per_s_per_gpu']:,.0f} | "
                     f"{e['value'] if e else '-'} | {r['recipe_log_tokens_per_s_total'] or 0:,.0f} | "
                     f"{r['peak_allocated_gib_per_rank']} | "
                     f"{list(r['nvidia_smi_peak_mib_per_gpu'].values())} |")
    lines += ["", f"ZeRO-3 checkpoint at step {resume['k']} (2 GPUs) resumed, max |Δloss| vs the 2-GPU curve:"]
    for name in RESUMES:
        r = resume.get(name)
        lines.append(f"- {LABEL[name]}: " + ("missing" if not r else f"{r['max_abs_delta']:.2e} over steps "
                                      f"{r['steps'][0]}–{r['steps'][-1]}"))
    return "\n".join(lines) + "\n"


def versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    import torch
    import transformers

    v = {"torch": torch.__version__, "transformers": transformers.__version__, "cuda": torch.version.cuda}
    try:
        v["deepspeed"] = version("deepspeed")
    except PackageNotFoundError:
        v["deepspeed"] = None
    return v


def measure(a) -> dict:
    runs = {n: run_summary(a.logs, n) for n in THROUGHPUT}
    resume = resume_summary(a.logs, a.k)
    dev = next((r["device"] for r in runs.values() if r), "unknown")
    meta = {"command": a.command, "gpu": dev, "date": time.strftime("%Y-%m-%d"), **versions()}
    entries = results_entries(runs, resume, meta)
    return {**meta, "runs": runs, "resume": resume, "results_json": entries, "markdown": markdown(runs, resume, entries)}


def collect_figures(path: str, source: str) -> dict[str, dict]:
    """The results.json entries of a committed zero_scaling.json (for eval/collect_results.py), each naming its
    ``source``; {} when the file is absent (the GPU run has not been made)."""
    if not os.path.isfile(path):
        return {}
    with open(path, encoding="utf-8") as f:
        entries = json.load(f)["results_json"]
    return {k: {**v, "source": source} for k, v in entries.items()}


@run_cli
def main() -> int:
    p = ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--logs", help="the logs dir of eval/gpu/zero_scaling.sh (per-run rank*.json, .log, .smi)")
    p.add_argument("--k", type=int, default=10, help="the step of the ZeRO-3 checkpoint that was resumed")
    p.add_argument("--command", default="bash eval/gpu/zero_scaling.sh")
    p.add_argument("--plan", help="a zero_scaling.json: print the 125M/350M/1B memory and tokens/s table instead")
    p.add_argument("--out", help="write the JSON here")
    p.add_argument("--markdown", help="write the markdown table here")
    p.add_argument("--overwrite", action="store_true")
    a = p.parse_args()
    if bool(a.logs) == bool(a.plan):
        raise UserError("give exactly one of --logs (measured runs) or --plan (a zero_scaling.json)")
    for path in (a.out, a.markdown):
        refuse_overwrite(path, a.overwrite)
    if a.plan:
        from plan_table import plan_markdown  # eval/plan_table.py

        with open(a.plan, encoding="utf-8") as f:
            text = plan_markdown(json.load(f))
        result = None
    else:
        if not os.path.isdir(a.logs):
            raise UserError(f"--logs {a.logs} is not a directory")
        result = measure(a)
        text = result["markdown"]
    print(text)
    if a.out and result is not None:
        with open(a.out, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=1)
    if a.markdown:
        with open(a.markdown, "w", encoding="utf-8") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    main()
