"""The decoding benchmark's files and tables: OUT/results.json (timings, eval/decode_bench.py), OUT/judged.json
(genppl + unigram entropy per sample file), and the markdown table joining them with ratios to the ``llada`` row.

A row's quality is that of its own sample file when judged; otherwise, for the batch-1 rows, that of the same
row at the same length and the largest judged batch: greedy decoding treats every row of a batch alone, so the
batch-1 sample is the first sample of the batch-64 file (same prompt, same rule) — batch 1 holds one sample, too
few to judge.
"""

from __future__ import annotations

import json
import os

from ..cli import UserError
from .files import write_json
from .decode_rows import sample_stem


def write_results(out: str, res: dict) -> None:
    write_json(os.path.join(out, "results.json"), res)


def write_judged(out: str, scored: dict) -> None:
    write_json(os.path.join(out, "judged.json"), scored)


def read_json(path: str, what: str) -> dict:
    """A JSON object from ``path``; a missing or invalid file is one UserError naming it."""
    if not os.path.isfile(path):
        raise UserError(f"{what} {path!r} does not exist")
    try:
        with open(path, encoding="utf-8") as f:
            obj = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"{what} {path!r} is not valid JSON ({e})") from None
    if not isinstance(obj, dict):
        raise UserError(f"{what} {path!r} must hold a JSON object")
    return obj


def read_bench(out: str) -> tuple[dict, dict]:
    """(results.json, judged.json or {}) of a decode_bench output dir, checked."""
    res = read_json(os.path.join(out, "results.json"), "decode_bench results")
    if not isinstance(res.get("rows"), list) or not isinstance(res.get("meta"), dict):
        raise UserError(f"{out}/results.json has no 'meta' and 'rows': not written by eval/decode_bench.py")
    judged_path = os.path.join(out, "judged.json")
    return res, (read_json(judged_path, "judged samples") if os.path.isfile(judged_path) else {})


def quality(judged: dict, G: int, row: str, B: int) -> dict | None:
    """{genppl, entropy, samples, batch_size} of a row: its own file, else the largest judged batch at ``G``."""
    name = sample_stem(row)
    found = []
    for f, r in judged.items():
        base = os.path.basename(f).rsplit(".", 1)[0]  # G{G}_B{B}_{name}
        parts = base.split("_", 2)
        if len(parts) == 3 and parts[0] == f"G{G}" and parts[2] == name and parts[1][1:].isdigit():
            found.append((int(parts[1][1:]) == B, int(parts[1][1:]), r))
    if not found:
        return None
    _, b, r = max(found, key=lambda t: (t[0], t[1]))
    return {"genppl": r["genppl"], "entropy": r["unigram_entropy"], "samples": r["samples"], "batch_size": b}


def paired_quality(judged: dict, G: int, row: str, B: int, reference: str = "llada") -> tuple[dict | None, dict | None]:
    """(the row's :func:`quality`, the reference's quality judged at the same batch size, or None): a ratio never
    compares samples of two batch sizes (a batch-64 row judged only through its batch-1 samples is compared with the
    reference's batch-1 samples)."""
    q = quality(judged, G, row, B)
    if q is None:
        return None, None
    ref = quality(judged, G, reference, q["batch_size"])
    return q, (ref if ref is not None and ref["batch_size"] == q["batch_size"] else None)


def table_rows(res: dict, judged: dict) -> list[dict]:
    """The measured rows with quality and ratios to llada's quality at the same (B, G) added."""
    out = []
    for r in res["rows"]:
        if "skipped" in r:
            out.append(dict(r))
            continue
        q, ref = paired_quality(judged, r["gen_length"], r["run"], r["batch_size"])
        row = dict(r, quality=q)
        if q and ref:
            row["genppl_ratio"] = round(q["genppl"] / ref["genppl"], 3)
            row["entropy_delta"] = round(q["entropy"] - ref["entropy"], 3)
        out.append(row)
    return out


def _fmt(v, spec: str = "", missing: str = "–") -> str:
    return missing if v is None else format(v, spec)


def pct(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.1f}%"


def markdown(rows: list[dict]) -> str:
    """One markdown table: every row with NFE, tokens/s, speedup, agreement, genppl, entropy and ratios."""
    header = ("| batch | gen | row | NFE | tokens/s | speedup vs llada | = llada | = uncached | genppl | entropy "
              "| genppl / llada | Δ entropy | note |")
    lines = [header, "|" + "---|" * 13]
    for r in rows:
        if "skipped" in r:
            lines.append(f"| {r['batch_size']} | {r['gen_length']} | {r['run']} | | | | | | | | | | skipped: {r['skipped']} |")
            continue
        q = r.get("quality") or {}
        est = " (est.)" if r.get("estimated") or r.get("reference_estimated") else ""
        judged_at = f" (B={q['batch_size']})" if q and q["batch_size"] != r["batch_size"] else ""
        lines.append(
            f"| {r['batch_size']} | {r['gen_length']} | {r['run']} | {r['nfe']} | {_fmt(r['tokens_per_s'], ',.1f')} | "
            f"{_fmt(r['speedup'], '.2f')}×{est} | {pct(r.get('agreement'))} | {pct(r.get('agreement_uncached'))} | "
            f"{_fmt(q.get('genppl'), '.2f')}{judged_at} | {_fmt(q.get('entropy'), '.3f')} | "
            f"{_fmt(r.get('genppl_ratio'), '.3f')} | {_fmt(r.get('entropy_delta'), '+.3f')} | {r.get('note', '')} |")
    return "\n".join(lines)


def judged_table(out: str) -> str:
    res, judged = read_bench(out)
    m = res["meta"]
    head = (f"model {m['model']} ({m.get('parameters', 0) / 1e6:.1f}M, objective {m.get('objective')}) | {m['device']} | "
            f"{m['dtype']} | block {m['block_length']} | threshold {m['threshold']} | eb_gamma {m.get('eb_gamma')} | "
            f"torch {m['torch']} | {m['date']}")
    return head + "\n\n" + markdown(table_rows(res, judged))
