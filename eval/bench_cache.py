"""Decoding speed: Fast-dLLM dual / prefix KV cache, threshold parallel decoding and CUDA graphs against
LLaDA's uncached one-token-per-step loop, on one model, with the generated texts for quality scoring.

    python eval/bench_cache.py --model runs/base125 --gen-length 256 512 --block-length 32 \
        --batch-size 1 64 --device cuda --dtype bf16 --out runs/bench_cache

Runs, per batch size and generation length G (all greedy: temperature 0, low-confidence remasking,
LLaDA's even split of each block's tokens over its steps, ``steps = G``, i.e. one token per step):

  llada            the reference: uncached, logits of every column at every step, eager (LLaDA's loop;
                   the model is passed as a plain function, so none of the options below apply)
  uncached         uncached, LM head on the block window only (what ``generate`` does with an MDLM model)
  graphs           + CUDA-graph replay of each step (``cuda_graphs``; the same samples as ``uncached``)
  dual             Fast-dLLM dual cache (approximate after each block's first step)
  threshold        Fast-dLLM parallel decoding: also commit every position with p ≥ ``--threshold``
  dual+threshold, dual+graphs, threshold+graphs, dual+threshold+graphs: the combinations
  prefix, prefix+threshold: Fast-dLLM prefix cache (with ``--prefix``)

For each: tokens/s (generated tokens / wall time, CUDA-synchronised, median of ``--repeats`` after one
untimed warm-up run of the same configuration; graph captures are inside the timed runs), NFE per
sequence, token positions computed per sequence (full forwards count L, cached steps W or L − lo),
speedup over ``llada`` and agreement with it (share of identical generated tokens). Generated texts (cut
at EOS) go to ``OUT/samples/G{G}_B{B}_{run}.jsonl`` so that ``python eval/genppl.py OUT/samples/*.jsonl``
scores each run's generative perplexity with the judge LM later (on the CPU); the table is printed and
written with the metadata to ``OUT/results.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import torch  # noqa: E402
import transformers  # noqa: E402

import mdlm  # noqa: E402,F401  (registers the Auto classes)
from mdlm.pipelines import load_for_generation  # noqa: E402
from mdlm.pipelines.text import build_text_canvas  # noqa: E402
from mdlm.sampling import SamplerConfig, as_logits_fn, generate, trim_at_eos  # noqa: E402

DEFAULT_PROMPTS = [
    "ROMEO:\nBut soft, what light through yonder window breaks?",
    "KING HENRY:\nOnce more unto the breach, dear friends,",
    "HAMLET:\nTo be, or not to be: that is the question:",
    "First Citizen:\nBefore we proceed any further, hear me speak.",
    "JULIET:\nO Romeo, Romeo! wherefore art thou Romeo?",
    "MACBETH:\nIs this a dagger which I see before me,",
    "PORTIA:\nThe quality of mercy is not strain'd,",
    "PROSPERO:\nOur revels now are ended. These our actors,",
]
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


def runs(threshold: float, prefix: bool) -> dict[str, dict[str, Any]]:
    """Name → SamplerConfig overrides; the first is the reference every other run is compared with."""
    out: dict[str, dict[str, Any]] = {
        "llada": dict(cache="none"),
        "uncached": dict(cache="none"),
        "graphs": dict(cache="none", cuda_graphs=True),
        "dual": dict(cache="dual"),
        "dual+graphs": dict(cache="dual", cuda_graphs=True),
        "threshold": dict(cache="none", threshold=threshold),
        "threshold+graphs": dict(cache="none", threshold=threshold, cuda_graphs=True),
        "dual+threshold": dict(cache="dual", threshold=threshold),
        "dual+threshold+graphs": dict(cache="dual", threshold=threshold, cuda_graphs=True),
    }
    if prefix:
        out["prefix"] = dict(cache="prefix")
        out["prefix+threshold"] = dict(cache="prefix", threshold=threshold)
    return out


def read_prompts(path: str | None) -> list[str]:
    if path is None:
        return DEFAULT_PROMPTS
    with open(path, encoding="utf-8") as f:
        prompts = [line.rstrip("\n").replace("\\n", "\n") for line in f if line.strip()]
    if not prompts:
        raise ValueError(f"no prompts in {path}")
    return prompts


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed_generate(model, canvas, attn, prompt, tok, cfg: SamplerConfig, suppress: list[int], device: str):
    """One generation (greedy, so the seed does not matter) and its wall time in seconds."""
    sync(device)
    t0 = time.perf_counter()
    with torch.no_grad():
        out = generate(model, canvas, mask_id=tok.mask_token_id, config=cfg, attention_mask=attn, cond_mask=prompt,
                       suppress_tokens=suppress, generator=torch.Generator(device=device).manual_seed(0))
    sync(device)
    return out, time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", required=True, help="MDLM checkpoint dir (or LoRA adapter dir)")
    p.add_argument("--gen-length", type=int, nargs="+", default=[256, 512])
    p.add_argument("--block-length", type=int, default=32)
    p.add_argument("--batch-size", type=int, nargs="+", default=[1, 64])
    p.add_argument("--prompts", default=None, help="text file, one prompt per line (\\n for newlines); "
                   "default: a few Shakespeare openings. Cycled to fill the batch.")
    p.add_argument("--threshold", type=float, default=0.9)
    p.add_argument("--repeats", type=int, default=2, help="timed runs per configuration (median reported)")
    p.add_argument("--prefix", action="store_true", help="add the prefix-cache runs")
    p.add_argument("--runs", nargs="+", default=None, help="only these runs (llada, the reference, always runs)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--dtype", choices=sorted(DTYPES), default=None, help="default bf16 on cuda, fp32 on cpu")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (CPU runs)")
    p.add_argument("--out", default="runs/bench_cache")
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)

    dtype = DTYPES[a.dtype or ("bf16" if a.device.startswith("cuda") else "fp32")]
    loaded = load_for_generation(a.model, device=a.device, dtype=dtype)
    model, tok = loaded.model, loaded.tokenizer
    if tok is None or tok.mask_token_id is None:
        raise SystemExit(f"{a.model} has no tokenizer with a [MASK] token")
    prompts = read_prompts(a.prompts)
    suppress = [i for i in (tok.pad_token_id,) if i is not None and i != tok.eos_token_id]
    max_len = getattr(model.config, "max_position_embeddings", None)
    os.makedirs(os.path.join(a.out, "samples"), exist_ok=True)
    plan = runs(a.threshold, a.prefix)
    if a.runs:
        unknown = sorted(set(a.runs) - set(plan))
        if unknown:
            raise SystemExit(f"unknown run(s) {unknown}; valid: {', '.join(plan)}")
        plan = {k: v for k, v in plan.items() if k == "llada" or k in a.runs}
    reference = as_logits_fn(model)  # a plain function: full logits, no cache, no graphs

    rows: list[dict[str, Any]] = []
    for B in a.batch_size:
        batch_prompts = [prompts[i % len(prompts)] for i in range(B)]
        for G in a.gen_length:
            canvas, attn, prompt = build_text_canvas(tok, batch_prompts, G, max_len)
            canvas, attn, prompt = canvas.to(a.device), attn.to(a.device), prompt.to(a.device)
            L = canvas.shape[1]
            base_seq, base_time, base_pos = None, None, None
            for name, kw in plan.items():
                cfg = SamplerConfig(steps=G, block_length=a.block_length, schedule="even", temperature=0.0,
                                    remasking="low_confidence", confidence="prob", stop_at_eos=False, **kw)
                m = reference if name == "llada" else model
                timed_generate(m, canvas, attn, prompt, tok, cfg, suppress, a.device)  # warm-up
                times = []
                for _ in range(max(1, a.repeats)):
                    out, dt = timed_generate(m, canvas, attn, prompt, tok, cfg, suppress, a.device)
                    times.append(dt)
                wall = statistics.median(times)
                gen = out.sequences[:, L - G:]  # (B, G)
                if base_seq is None:
                    base_seq, base_time, base_pos = gen, wall, out.positions
                texts = [tok.decode(t, skip_special_tokens=True) for t in trim_at_eos(gen, tok.eos_token_id)]
                sample_file = os.path.join(a.out, "samples", f"G{G}_B{B}_{name.replace('+', '_')}.jsonl")
                with open(sample_file, "w", encoding="utf-8") as f:
                    for pr, text in zip(batch_prompts, texts):
                        f.write(json.dumps({"run": name, "gen_length": G, "batch_size": B,
                                            "block_length": a.block_length, "prompt": pr, "text": text}) + "\n")
                rows.append({
                    "batch_size": B, "gen_length": G, "run": name, "cache": cfg.cache_implementation, "threshold": cfg.threshold,
                    "cuda_graphs": cfg.cuda_graphs, "graph_replays": out.graph_replays,
                    "nfe": out.nfe, "positions": out.positions,
                    "positions_vs_baseline": round(out.positions / base_pos, 4),
                    "seconds": round(wall, 4), "tokens_per_s": round(B * G / wall, 1),
                    "speedup": round(base_time / wall, 2),
                    "agreement": round(float((gen == base_seq).double().mean()), 4),
                    "example": texts[0],
                })
                r = rows[-1]
                print(f"B={B} G={G} {name}: {r['tokens_per_s']} tok/s, NFE {r['nfe']}, positions {r['positions']}, "
                      f"speedup {r['speedup']}x, agreement {r['agreement']:.3f}", flush=True)

    device_name = torch.cuda.get_device_name() if a.device.startswith("cuda") else "cpu"
    print(f"\nmodel {a.model} | {device_name} | {str(dtype).replace('torch.', '')} | block {a.block_length} | "
          f"steps = gen length | threshold {a.threshold} | torch {torch.__version__}\n")
    print("| batch | gen | run | NFE | positions / seq | tokens/s | speedup vs llada | agreement with llada |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['batch_size']} | {r['gen_length']} | {r['run']} | {r['nfe']} | {r['positions']:,} "
              f"({r['positions_vs_baseline']:.0%}) | {r['tokens_per_s']:,} | {r['speedup']:.2f}× | {r['agreement']:.1%} |")
    meta = {"model": a.model, "device": device_name, "dtype": str(dtype), "torch": torch.__version__,
            "transformers": transformers.__version__, "batch_sizes": a.batch_size, "block_length": a.block_length,
            "threshold": a.threshold, "repeats": a.repeats, "command": " ".join(sys.argv),
            "date": time.strftime("%Y-%m-%d")}
    with open(os.path.join(a.out, "results.json"), "w", encoding="utf-8") as f:
        json.dump({"meta": meta, "rows": rows}, f, indent=1)
    print(f"\nwrote {a.out}/results.json and {a.out}/samples/*.jsonl "
          f"(score with: python eval/genppl.py {a.out}/samples/*.jsonl)")


if __name__ == "__main__":
    main()
