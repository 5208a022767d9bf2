"""One JSON of what eval/gpu/sft_smollm2.sh measured: SFT speed and memory under ZeRO-3 (trainer log, nvidia-smi
samples), the ZeRO-3 run's held-out response ELBO next to the same figure of the adapter reloaded from its parts on
one device, and the content metrics (eval/sft_content_eval.py).

    python eval/sft_gpu_summary.py --dir $OUT --out $OUT/sft_results.json
"""

from __future__ import annotations

import json
import os

from mdlm.cli import ArgumentParser, refuse_overwrite, run_cli


def _load(path: str):
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def train_figures(log: list[dict]) -> dict:
    """Steps, tokens/s (mean over logging records after the first, which includes start-up) and peak memory."""
    recs = [r for r in log if "tokens_per_s" in r]
    speeds = [r["tokens_per_s"] for r in recs[1:]] or [r["tokens_per_s"] for r in recs]
    mems = [r["max_memory_gib"] for r in recs if "max_memory_gib" in r]
    losses = [r["loss"] for r in log if "loss" in r]
    runtime = next((r["train_runtime"] for r in log if "train_runtime" in r), None)
    return {"steps": max((r.get("step", 0) for r in log), default=0), "train_runtime_s": runtime,
            "tokens_per_s_mean": sum(speeds) / len(speeds) if speeds else None,
            "torch_max_memory_allocated_gib_rank0": max(mems) if mems else None,
            "loss_first": losses[0] if losses else None, "loss_last": losses[-1] if losses else None}


def smi_peak(path: str) -> dict[str, float]:
    """GPU index → peak memory.used (GiB) over the nvidia-smi samples (``time index, MiB, util`` lines)."""
    peak: dict[str, float] = {}
    if not os.path.isfile(path):
        return peak
    with open(path, encoding="utf-8") as f:
        for line in f:
            parts = [p.strip() for p in line.replace(",", " ").split()]
            if len(parts) >= 3 and parts[1].isdigit():
                peak[parts[1]] = max(peak.get(parts[1], 0.0), float(parts[2]) / 1024)
    return peak


@run_cli
def main() -> int:
    p = ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dir", required=True, help="the script's $OUT")
    p.add_argument("--out", required=True)
    p.add_argument("--overwrite", action="store_true")
    a = p.parse_args()
    refuse_overwrite(a.out, a.overwrite)
    content = _load(os.path.join(a.dir, "content", "sft_content.json")) or {}
    ev = _load(os.path.join(a.dir, "eval_metrics.json")) or {}
    m = content.get("metrics", {})
    res = {"train": train_figures(_load(os.path.join(a.dir, "train_log.json")) or []),
           "nvidia_smi_peak_gib": smi_peak(os.path.join(a.dir, "nvidia_smi.log")),
           "zero3_eval_nll": ev.get("eval_nll"),
           "reloaded_response_elbo_nats": (m.get("SFT MDM") or {}).get("response_elbo_nats"),
           "content": {k: {"definition_content": v["definition_content"], "synonym_exact": v["synonym_exact"],
                           "response_elbo_nats": v["response_elbo_nats"]} for k, v in m.items()}}
    with open(a.out, "w", encoding="utf-8") as f:
        json.dump(res, f, indent=1)
    print(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    main()
