"""Base vs LoRA-tuned model on held-out instructions: response-only ELBO, answer format, generations.

    python eval/sft_eval.py --base runs/base_tiny --adapter runs/wordnet_lora_tiny --num-examples 60 \\
        --out runs/wordnet_lora_tiny/eval
    # a user held-out JSONL instead of WordNet's held-out words (format share only for rows with task/word)
    python eval/sft_eval.py --base DIR --adapter DIR --eval-files heldout.jsonl --out DIR

Figures (the same held-out subset and the same random masks / sampler seed for both models):

* response ELBO — nats per response token: ``prompt ‖ response ‖ EOS`` with only response + EOS masked
  and scored (``eval_pad_policy="mask"`` of recipes/sft_lora.py; LLaDA's conditional likelihood), over
  ``--num-elbo`` examples (the recipe's ``eval_nll`` subset when equal to its ``max_eval_examples``);
* format share — the share of ``--num-examples`` generated answers (chat format, the adapter's
  sampler defaults) that ``mdlm.data.wordnet.check_format`` accepts, overall and per task;
* ``--show`` generations side by side (markdown table).

Writes ``OUT/sft_eval.json`` and ``OUT/sft_eval.md`` and prints the markdown.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import sys
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)

import torch  # noqa: E402

import mdlm  # noqa: E402,F401
from mdlm.cli import UserError, run_cli  # noqa: E402


def _recipe():
    spec = importlib.util.spec_from_file_location("sft_lora_recipe", os.path.join(ROOT, "recipes", "sft_lora.py"))
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses need their module registered
    spec.loader.exec_module(mod)
    return mod


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--base", required=True, help="base checkpoint dir")
    p.add_argument("--adapter", required=True, help="LoRA adapter dir (recipes/sft_lora.py output)")
    p.add_argument("--out", required=True, help="dir for sft_eval.json and sft_eval.md")
    p.add_argument("--num-examples", type=int, default=60, help="held-out prompts generated for the format share")
    p.add_argument("--num-elbo", type=int, default=256, help="held-out examples scored by the response ELBO")
    p.add_argument("--elbo-samples", type=int, default=4, help="Monte-Carlo samples per example")
    p.add_argument("--show", type=int, default=12, help="generations shown side by side")
    p.add_argument("--eval-files", nargs="+", help="held-out JSONL (default: WordNet held-out words)")
    p.add_argument("--wordnet-dir", default=None)
    p.add_argument("--max-length", type=int, default=None, help="default: the model's context")
    p.add_argument("--gen-length", type=int, help="default: the adapter's generation_config.json")
    p.add_argument("--steps", type=int)
    p.add_argument("--block-length", type=int)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    a = p.parse_args(argv)
    for k in ("num_examples", "num_elbo", "elbo_samples", "batch_size"):
        if getattr(a, k) < 1:
            raise UserError(f"--{k.replace('_', '-')} must be ≥ 1")
    return a


# ----------------------------------------------------------------------------------------- data
def heldout_rows(a, recipe):
    """(rows for the ELBO, rows for generation): fixed subsets of the held-out set."""
    from mdlm.data.sft import load_sft_jsonl

    if a.eval_files:
        rows = load_sft_jsonl(a.eval_files)
    else:
        from mdlm.data.wordnet import WORDNET_DIR

        rows = recipe.wordnet_data(a.wordnet_dir or WORDNET_DIR)["heldout"]
    elbo_rows = recipe.select_eval(rows, a.num_elbo)
    gen_rows = stratified(rows, a.num_examples, seed=a.seed)
    return elbo_rows, gen_rows


def stratified(rows, n: int, seed: int):
    """``n`` rows, as evenly over ``task`` as the data allows (round robin over a shuffled set)."""
    rows = rows.shuffle(seed=seed + 17)
    if "task" not in rows.column_names:
        return rows.select(range(min(n, len(rows))))
    by_task: dict[str, list[int]] = {}
    for i, t in enumerate(rows["task"]):
        by_task.setdefault(t, []).append(i)
    picked: list[int] = []
    queues = [list(reversed(v)) for _, v in sorted(by_task.items())]
    while len(picked) < n and any(queues):
        for q in queues:
            if q and len(picked) < n:
                picked.append(q.pop())
    return rows.select(picked)


# ------------------------------------------------------------------------------------- measures
@torch.no_grad()
def response_elbo(model, tok, features, collator, *, num_samples: int, seed: int, batch_size: int, device) -> dict:
    """Response-only NELBO (nats / scored token) of ``features`` (SFT features, ``mask`` padding)."""
    from mdlm.elbo import elbo_nll

    g = torch.Generator(device=device).manual_seed(seed + 7919)

    def fn(x, am):
        return model(input_ids=x, attention_mask=am).logits

    nll = torch.zeros(len(features), dtype=torch.float64)
    ntok = torch.zeros(len(features), dtype=torch.float64)
    for s in range(0, len(features), batch_size):
        batch = collator([features[i] for i in range(s, min(s + batch_size, len(features)))])
        batch = {k: v.to(device) for k, v in batch.items()}
        res = elbo_nll(fn, batch["input_ids"], eligible=batch["eligible"], mask_id=tok.mask_token_id,
                       attention_mask=batch["attention_mask"], num_samples=num_samples, generator=g)
        nll[s : s + len(res.nll_sum)] = res.nll_sum.double().cpu()
        ntok[s : s + len(res.nll_sum)] = res.num_tokens.double().cpu()
    return {"nll_per_row": nll, "tokens_per_row": ntok, "nats_per_token": float(nll.sum() / ntok.sum().clamp_min(1))}


def generate_answers(model, tok, prompts: list[str], config, gen_length: int, *, seed: int, batch_size: int) -> list[str]:
    from mdlm.pipelines.text import generate_text

    out: list[str] = []
    for s in range(0, len(prompts), batch_size):
        texts, _ = generate_text(model, tok, prompts[s : s + batch_size], config, gen_length, seed=seed + s, chat=True)
        out += texts
    return out


def format_scores(rows, answers: list[str], exceptions) -> tuple[list[bool | None], dict]:
    from mdlm.data.wordnet import check_format

    ok: list[bool | None] = []
    for r, ans in zip(rows, answers):
        ok.append(check_format(r["task"], r["word"], ans, exceptions) if r.get("task") and r.get("word") else None)
    scored = [(r.get("task"), v) for r, v in zip(rows, ok) if v is not None]
    share = {"all": sum(v for _, v in scored) / len(scored) if scored else float("nan")}
    for task in sorted({t for t, _ in scored}):
        vals = [v for t, v in scored if t == task]
        share[task] = sum(vals) / len(vals)
    share["n"] = len(scored)
    return ok, share


# ------------------------------------------------------------------------------------- markdown
def _cell(text: str, limit: int = 90) -> str:
    text = " ".join(str(text).split()) if text is not None else ""
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    return text.replace("|", "\\|") or "∅"


def _pct(x: float) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f}%"


def to_markdown(res: dict) -> str:
    b, t = res["base"], res["tuned"]
    lines = [
        f"# SFT evaluation: `{res['adapter']}` vs its base `{res['base_dir']}`",
        "",
        f"Held-out: {res['heldout']}; response ELBO over {res['num_elbo']} examples × {res['elbo_samples']} "
        f"MC samples ({res['elbo_tokens']:.0f} scored tokens); format share over {res['num_examples']} generations "
        f"({res['sampler']}).",
        "",
        "| metric | base | tuned |",
        "|---|---|---|",
        f"| response ELBO (nats/token, lower is better) | {b['elbo_nats_per_token']:.3f} | {t['elbo_nats_per_token']:.3f} |",
        f"| response ELBO (bits/token) | {b['elbo_nats_per_token'] / math.log(2):.3f} | "
        f"{t['elbo_nats_per_token'] / math.log(2):.3f} |",
    ]
    for task in [k for k in t["format_share"] if k not in ("all", "n")]:
        lines.append(f"| format share: {task} | {_pct(b['format_share'].get(task))} | {_pct(t['format_share'].get(task))} |")
    lines += [
        f"| **format share: all** | **{_pct(b['format_share']['all'])}** | **{_pct(t['format_share']['all'])}** |",
        f"| wall time: ELBO / generation (s) | {b['elbo_seconds']:.1f} / {b['generation_seconds']:.1f} | "
        f"{t['elbo_seconds']:.1f} / {t['generation_seconds']:.1f} |",
        "",
        f"## {len(res['examples'])} held-out generations side by side (✓ = expected format)",
        "",
        "| # | task | word | reference | base | tuned |",
        "|---|---|---|---|---|---|",
    ]

    def mark(v):
        return "" if v is None else (" ✓" if v else " ✗")

    for i, ex in enumerate(res["examples"], 1):
        lines.append(
            f"| {i} | {_cell(ex.get('task') or '')} | {_cell(ex.get('word') or ex['prompt'], 40)} | {_cell(ex['reference'])} | "
            f"{_cell(ex['base'])}{mark(ex['base_ok'])} | {_cell(ex['tuned'])}{mark(ex['tuned_ok'])} |"
        )
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------ main
def evaluate(a: argparse.Namespace) -> dict:
    from transformers import AutoModelForMaskedLM

    from mdlm.data.sft import SFTCollator, tokenize_sft_dataset
    from mdlm.data.wordnet import load_exceptions
    from mdlm.pipelines import load_for_generation
    from mdlm.pipelines.text import sampler_config_from

    recipe = _recipe()
    t_start = time.perf_counter()
    tuned = load_for_generation(a.adapter, device=a.device)
    if os.path.abspath(tuned.base_dir) != os.path.abspath(a.base):
        print(f"note: the adapter names base {tuned.base_dir}; comparing against --base {a.base}", file=sys.stderr)
    base = AutoModelForMaskedLM.from_pretrained(a.base, use_safetensors=True).to(a.device).eval()
    tok = tuned.tokenizer
    if tok is None:
        raise UserError(f"{a.adapter} has no tokenizer files")
    overrides = {"gen_length": a.gen_length, "steps": a.steps or a.gen_length, "block_length": a.block_length}
    config, gen_length = sampler_config_from(tuned.defaults, overrides)
    elbo_rows, gen_rows = heldout_rows(a, recipe)
    max_length = a.max_length or base.config.max_position_embeddings
    feats = tokenize_sft_dataset(elbo_rows, tok, max_length=max_length, pad_policy="mask", padding="longest",
                                 truncate_prompt="left")
    collator = SFTCollator.from_tokenizer(tok, "mask")
    exceptions = None
    if not a.eval_files:
        from mdlm.data.wordnet import WORDNET_DIR

        exceptions = load_exceptions(a.wordnet_dir or WORDNET_DIR)
    prompts = [recipe.row_prompt(r) for r in gen_rows]
    refs = [r["response"] if "response" in r else r["messages"][-1]["content"] for r in gen_rows]
    rows_list = [dict(r) for r in gen_rows]

    results: dict = {}
    for name, model in (("base", base), ("tuned", tuned.model)):
        t0 = time.perf_counter()
        elbo = response_elbo(model, tok, feats, collator, num_samples=a.elbo_samples, seed=a.seed,
                             batch_size=a.batch_size, device=a.device)
        t1 = time.perf_counter()
        answers = generate_answers(model, tok, prompts, config, gen_length, seed=a.seed, batch_size=a.batch_size)
        t2 = time.perf_counter()
        ok, share = format_scores(rows_list, answers, exceptions)
        per_task_elbo = {}
        if "task" in elbo_rows.column_names:
            for task in sorted(set(elbo_rows["task"])):
                idx = [i for i, t in enumerate(elbo_rows["task"]) if t == task]
                per_task_elbo[task] = float(elbo["nll_per_row"][idx].sum() / elbo["tokens_per_row"][idx].sum())
        results[name] = {
            "elbo_nats_per_token": elbo["nats_per_token"],
            "elbo_per_task": per_task_elbo,
            "format_share": share,
            "answers": answers,
            "format_ok": ok,
            "elbo_seconds": t1 - t0,
            "generation_seconds": t2 - t1,
        }
        results["elbo_tokens"] = float(elbo["tokens_per_row"].sum())
        print(f"{name}: response ELBO {elbo['nats_per_token']:.4f} nats/token ({t1 - t0:.1f}s) | format share "
              f"{_pct(share['all'])} of {share['n']} ({t2 - t1:.1f}s)", file=sys.stderr, flush=True)
    examples = [
        {"prompt": p, "task": r.get("task"), "word": r.get("word"), "reference": ref,
         "base": results["base"]["answers"][i], "tuned": results["tuned"]["answers"][i],
         "base_ok": results["base"]["format_ok"][i], "tuned_ok": results["tuned"]["format_ok"][i]}
        for i, (p, r, ref) in enumerate(zip(prompts, rows_list, refs))
    ]
    return {
        "base_dir": a.base,
        "adapter": a.adapter,
        "heldout": ", ".join(a.eval_files) if a.eval_files else "WordNet held-out words",
        "num_elbo": len(elbo_rows),
        "elbo_samples": a.elbo_samples,
        "elbo_tokens": results.pop("elbo_tokens"),
        "num_examples": len(gen_rows),
        "sampler": f"gen_length {gen_length}, steps {config.steps}, block {config.block_length}, "
                   f"temperature {config.temperature}, {config.unmasking}",
        "seed": a.seed,
        "device": a.device,
        "base": {k: v for k, v in results["base"].items() if k not in ("answers", "format_ok")},
        "tuned": {k: v for k, v in results["tuned"].items() if k not in ("answers", "format_ok")},
        "examples_all": examples,
        "examples": examples[: a.show],
        "wall_seconds": time.perf_counter() - t_start,
    }


@run_cli
def main() -> int:
    a = parse_args()
    torch.manual_seed(a.seed)
    res = evaluate(a)
    md = to_markdown(res)
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "sft_eval.json"), "w", encoding="utf-8") as f:
        json.dump(res, f, indent=1, ensure_ascii=False)
    with open(os.path.join(a.out, "sft_eval.md"), "w", encoding="utf-8") as f:
        f.write(md)
    print(md)
    print(f"[wrote {a.out}/sft_eval.json and sft_eval.md in {res['wall_seconds']:.1f}s]", file=sys.stderr)
    return 0


if __name__ == "__main__":
    main()
