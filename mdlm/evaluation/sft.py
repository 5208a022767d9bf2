"""Instruction-tuning (SFT) metrics, base vs LoRA-tuned on the same held-out examples:

* response ELBO — nats per response token of ``prompt ‖ response ‖ EOS`` with only response + EOS masked
  and scored (LLaDA's conditional likelihood, Nie et al. 2025 Sec. 2.3; :func:`mdlm.evaluation.elbo.elbo_nll`);
* format share — the share of generated answers that :func:`mdlm.data.wordnet.check_format` accepts,
  overall and per task;
* a markdown report with generations side by side.
"""

from __future__ import annotations

import math

import torch

from ..data.wordnet import check_format
from ..pipelines.text import generate_text
from .elbo import elbo_nll


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


@torch.no_grad()
def response_elbo(model, tok, features, collator, *, num_samples: int, seed: int, batch_size: int, device) -> dict:
    """Response-only NELBO (nats / scored token) of ``features`` (SFT features, ``mask`` padding)."""

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

    out: list[str] = []
    for s in range(0, len(prompts), batch_size):
        texts, _ = generate_text(model, tok, prompts[s : s + batch_size], config, gen_length, seed=seed + s, chat=True)
        out += texts
    return out


def format_scores(rows, answers: list[str], exceptions) -> tuple[list[bool | None], dict]:

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


def measure_model(model, tok, features, collator, elbo_rows, prompts: list[str], gen_rows: list[dict], config,
                  gen_length: int, exceptions, *, num_samples: int, seed: int, batch_size: int, device) -> dict:
    """One model's figures on the held-out set: response ELBO (overall and per task), the generated answers,
    their format share, and the seconds each part took."""
    import time

    t0 = time.perf_counter()
    elbo = response_elbo(model, tok, features, collator, num_samples=num_samples, seed=seed, batch_size=batch_size,
                         device=device)
    t1 = time.perf_counter()
    answers = generate_answers(model, tok, prompts, config, gen_length, seed=seed, batch_size=batch_size)
    t2 = time.perf_counter()
    ok, share = format_scores(gen_rows, answers, exceptions)
    per_task = {}
    if "task" in elbo_rows.column_names:
        for task in sorted(set(elbo_rows["task"])):
            idx = [i for i, t in enumerate(elbo_rows["task"]) if t == task]
            per_task[task] = float(elbo["nll_per_row"][idx].sum() / elbo["tokens_per_row"][idx].sum())
    return {"elbo_nats_per_token": elbo["nats_per_token"], "elbo_per_task": per_task, "format_share": share,
            "answers": answers, "format_ok": ok, "elbo_seconds": t1 - t0, "generation_seconds": t2 - t1,
            "elbo_tokens": float(elbo["tokens_per_row"].sum())}


def _cell(text: str, limit: int = 90) -> str:
    text = " ".join(str(text).split()) if text is not None else ""
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    return text.replace("|", "\\|") or "∅"


def percent(x: float | None) -> str:
    """``x`` as a percentage, or n/a (None or NaN)."""
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f}%"


def sft_markdown(res: dict) -> str:
    """The base-vs-tuned table and the generations side by side, from :func:`evaluate`'s result."""
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
        lines.append(f"| format share: {task} | {percent(b['format_share'].get(task))} | {percent(t['format_share'].get(task))} |")
    lines += [
        f"| **format share: all** | **{percent(b['format_share']['all'])}** | **{percent(t['format_share']['all'])}** |",
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
