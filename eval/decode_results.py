"""Write the decoding benchmark's keys into docs/benchmarks/results.json and its tables into docs/benchmarks/decoding.md.

    python eval/decode_results.py --mdm D/mdm_b1 D/mdm_b64 --bd3 D/bd3_16_b1 D/bd3_16_b64 \\
        --sampler D/bench_sampler_b8.json --nelbo D/train --overwrite

``--mdm`` / ``--bd3``: eval/decode_bench.py output dirs (results.json, judged.json) of the MDM and the block-diffusion
model; ``--nelbo``: the dir(s) of NAME_eval_metrics.json + train_meta.json from eval/gpu/decode_train.sh (the first
gives the key's value, later ones are kept under ``other_runs``);
``--sampler``: eval/bench_sampler.py's JSON. Keys (``mdlm.evaluation.decode_keys``): ``decode_speedup_len512``,
``decode_speedup_len1024``, ``decode_genppl_ratio_len512``, ``decode_tokens_per_s_b1`` (value: the MDM; the BD3
model's and, with ``--chat``, the instruction-tuned adapted SmolLM2's figures under ``by_model``; ``--by-model NAME
DIR...`` adds any other model there),
``sampler_overhead_pct``, ``bd3_nelbo_ratio``. Every other key of results.json is kept; a key already there is replaced only with ``--overwrite``. The tables replace the text between
the ``decode-results`` markers of the markdown file. Bad input: one ``error:`` line, nothing written.
"""

from __future__ import annotations

import json
import os

from mdlm.cli import ArgumentParser, UserError, positive_int, run_cli
from mdlm.evaluation.decode_keys import (
    Bench,
    genppl_key,
    missing_length_key,
    nelbo_key,
    sampler_key,
    speedup_key,
    tokens_per_s_key,
)
from mdlm.evaluation.decode_report import markdown, read_json, table_rows
from mdlm.evaluation.files import write_text

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
BEGIN, END = "<!-- decode-results:begin -->", "<!-- decode-results:end -->"


def keys(a) -> dict[str, dict]:
    models = ({"mdm": Bench(a.mdm)} | ({"bd3": Bench(a.bd3)} if a.bd3 else {})
              | ({"smollm2_chat": Bench(a.chat)} if a.chat else {}) | {n: Bench(d) for n, d in extra_models(a)})
    out: dict[str, dict] = {}
    # the MDM needs every length (an error otherwise); another model may have been measured at some only
    def measured(m: str, b: Bench, G: int) -> bool:
        return m == "mdm" or b.has_reference(1, G)

    for G in a.lengths:
        per = {m: speedup_key(b, G) if measured(m, b, G) else missing_length_key(G) for m, b in models.items()}
        brief = _brief(per)
        best = _best(brief, "the largest speedup under by_model: each a ratio to that model's own LLaDA loop in its "
                            "own run, its row chosen by the quality rule there; value is the --mdm model's")
        out[f"decode_speedup_len{G}"] = per["mdm"] | {"by_model": brief, "best_by_model": best}
    G = a.lengths[0]
    per = {m: genppl_key(b, b.choose(1, G)[0].row, G) if measured(m, b, G) else missing_length_key(G)
           for m, b in models.items()}
    out[f"decode_genppl_ratio_len{G}"] = per["mdm"] | {"by_model": _brief(per)}
    per = {m: tokens_per_s_key(b, a.lengths, G) for m, b in models.items()}
    brief = _brief(per)
    best = _best(brief, "the most tokens/s under by_model (batch 1, each model's chosen row at the key's length); "
                        "value is the --mdm model's")
    out["decode_tokens_per_s_b1"] = per["mdm"] | {"by_model": brief, "best_by_model": best}
    if a.sampler:
        out["sampler_overhead_pct"] = sampler_key(a.sampler, a.previous.get("sampler_overhead_pct"), a.sampler_row,
                                                  a.sampler_per_step)
    if a.nelbo:
        out["bd3_nelbo_ratio"] = nelbo_key(a.nelbo)
    return out


def extra_models(a) -> list[tuple[str, list[str]]]:
    """``--by-model NAME DIR [DIR ...]`` as (name, dirs); a name clash or a missing dir is one error."""
    out = []
    for spec in a.by_model or []:
        if len(spec) < 2:
            raise UserError(f"--by-model needs a NAME and at least one DIR, got {' '.join(spec)!r}")
        if spec[0] in ("mdm", "bd3", "smollm2_chat") or spec[0] in dict(out):
            raise UserError(f"--by-model name {spec[0]!r} is already taken")
        out.append((spec[0], spec[1:]))
    return out


def _brief(per: dict[str, dict]) -> dict[str, dict]:
    """Each model's value, row, model and source; and why, where there is no value."""
    out = {}
    for m, v in per.items():
        out[m] = {k: v.get(k) for k in ("value", "row", "model", "source")}
        if v.get("value") is None and v.get("missing"):
            out[m]["missing"] = v["missing"]
    return out


def _best(brief: dict[str, dict], note: str) -> dict | None:
    """The :func:`_brief` entry with the largest value (each a row chosen by the quality rule within its own run;
    the key's own ``value`` stays the ``--mdm`` model's), named, with ``note``; None when no model has one."""
    have = {m: v for m, v in brief.items() if v["value"] is not None}
    if not have:
        return None
    m = max(have, key=lambda k: have[k]["value"])
    return {"name": m} | have[m] | {"note": note}


def tables(a, figures: dict[str, dict]) -> str:
    parts = []
    for name, dirs in (("MDM", a.mdm), ("block diffusion (BD3)", a.bd3 or []),
                       ("adapted SmolLM2, instruction-tuned (chat prompts)", a.chat or []), *extra_models(a)):
        if not dirs:
            continue
        b = Bench(dirs)
        res = {"rows": sorted(b.rows.values(), key=lambda r: (r["batch_size"], r["gen_length"]))}
        m = b.meta
        parts.append(f"### {name}: {m.get('model')} ({m.get('parameters', 0) / 1e6:.1f}M), {m.get('device')}, "
                     f"{m.get('dtype')}, block {m.get('block_length')}, {m.get('date')}\n\n"
                     + markdown(table_rows(res, b.judged)))
    lines = ["### The chosen rows (rule: docs/benchmarks/decoding.md)", "", "| key | model | value | row |", "|---|---|---|---|"]
    for k, v in figures.items():
        for m, sub in (v.get("by_model") or {"-": v}).items():
            lines.append(f"| `{k}` | {m} | {json.dumps(sub.get('value'))} | {sub.get('row', '')} |")
    parts.append("\n".join(lines))
    if "bd3_nelbo_ratio" in figures:
        n = figures["bd3_nelbo_ratio"]
        parts.append(nelbo_table(f"{n.get('training', {}).get('steps')} steps each", n))
        parts += [nelbo_table(f"{o['steps']} steps each; {o['source']}", o) for o in n.get("other_runs") or []]
    return "\n\n".join(parts)


def nelbo_table(title: str, run: dict) -> str:
    """Markdown table of one training run of bd3_nelbo_ratio (its NELBOs and ratios; models it lacks left out)."""
    ratio = {"mdm": 1.0} | {f"bd3_{b}": r for b, r in run["value"].items()}
    rows = [f"| {k} | {v} | {ratio[k]} |" for k, v in run["nelbo_nats_per_token"].items() if v is not None]
    return (f"### Validation NELBO at equal tokens ({title})\n\n| model | NELBO (nats/token) | / MDM |\n|---|---|---|\n"
            + "\n".join(rows))


def replace_between_markers(text: str, body: str, path: str) -> str:
    if BEGIN not in text or END not in text or text.index(BEGIN) > text.index(END):
        raise UserError(f"{path} has no '{BEGIN}' ... '{END}' section to fill")
    head, rest = text.split(BEGIN, 1)
    return head + BEGIN + "\n" + body + "\n" + END + rest.split(END, 1)[1]


@run_cli
def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--mdm", nargs="+", required=True, help="decode_bench output dir(s) of the MDM")
    p.add_argument("--bd3", nargs="+", help="decode_bench output dir(s) of the block-diffusion model")
    p.add_argument("--chat", nargs="+", help="decode_bench output dir(s) of the instruction-tuned adapted SmolLM2 "
                   "(eval/gpu/decode_chat.sh; model (iii), under by_model as smollm2_chat)")
    p.add_argument("--by-model", nargs="+", action="append", metavar="NAME_THEN_DIRS",
                   help="NAME DIR [DIR ...]: another model's decode_bench dir(s), under by_model as NAME "
                   "(repeatable; e.g. smollm2_chat_canvas, eval/gpu/chat_canvas.sh)")
    p.add_argument("--sampler", help="eval/bench_sampler.py JSON output")
    p.add_argument("--sampler-row", help="the bench_sampler row (strategy) for sampler_overhead_pct (default: the first)")
    p.add_argument("--sampler-per-step", action="store_true", help="sampler_overhead_pct's value: the row's overhead "
                   "per extra step (a graphed row timed at two step counts) instead of its synced whole-call share")
    p.add_argument("--nelbo", nargs="+", help="dir(s) of NAME_eval_metrics.json + train_meta.json "
                   "(eval/gpu/decode_train.sh); the first gives the key's value, later ones (e.g. longer runs of "
                   "fewer models) are kept under other_runs")
    p.add_argument("--lengths", type=positive_int, nargs="+", default=[512, 1024],
                   help="generation lengths of the speedup keys (the first: the genppl and tokens/s keys)")
    p.add_argument("--results", default=os.path.join(ROOT, "docs", "benchmarks", "results.json"))
    p.add_argument("--markdown", default=os.path.join(ROOT, "docs", "benchmarks", "decoding.md"))
    p.add_argument("--overwrite", action="store_true", help="replace keys already in --results")
    p.add_argument("--print-only", action="store_true", help="print the keys and tables, write nothing")
    a = p.parse_args(argv)
    a.previous = read_json(a.results, "--results")
    md = None
    if os.path.isfile(a.markdown):
        with open(a.markdown, encoding="utf-8") as f:
            md = f.read()
    if md is None and not a.print_only:
        raise UserError(f"--markdown {a.markdown!r} does not exist")
    figures = keys(a)
    body = tables(a, figures)
    if a.print_only:
        print(json.dumps(figures, indent=1, ensure_ascii=False) + "\n\n" + body)
        return 0
    clash = sorted(k for k in figures if k in a.previous)
    if clash and not a.overwrite:
        raise UserError(f"{a.results} already has {', '.join(clash)}; pass --overwrite to replace them")
    new_md = replace_between_markers(md, body, a.markdown)
    write_text(a.results, json.dumps(a.previous | figures, indent=1, ensure_ascii=False) + "\n")
    write_text(a.markdown, new_md)
    for k, v in figures.items():
        print(f"{k}: {json.dumps(v.get('value'))} ({v.get('row', '')})")
    return 0


if __name__ == "__main__":
    main()
