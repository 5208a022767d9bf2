"""The results.json keys of the decoding benchmark (issue 17), each built from raw output files, with the row it
comes from, the command, GPU, versions and date (eval/decode_results.py writes them).

* ``decode_speedup_len{512,1024}``: batch 1, the row chosen by :func:`.decode_choice.choose_speedup_row`
  (fastest row whose samples pass the quality bar against LLaDA's loop; never the fastest row silently);
* ``decode_genppl_ratio_len512``: genppl(chosen row) / genppl(llada), 512 tokens, the batch-64 samples;
* ``decode_tokens_per_s_b1``: tokens/s of the chosen row at batch 1 (per length);
* ``sampler_overhead_pct``: from eval/bench_sampler.py's JSON (its first row, the default greedy decoding);
* ``bd3_nelbo_ratio``: validation NELBO of the BD3 model / the MDM's, per block size, trained at equal tokens.
"""

from __future__ import annotations

import json
import os
from typing import Any

from ..cli import UserError
from .decode_choice import (
    ENTROPY_TOL_NATS,
    GENPPL_RATIO_MAX,
    Choice,
    choose_speedup_row,
)
from .decode_report import paired_quality, quality, read_bench, read_json
from .decode_rows import EXACT_BY_CONSTRUCTION

WRITTEN_BY = "eval/decode_results.py"


# A row exact by construction (decode_rows.EXACT_BY_CONSTRUCTION) passes by its agreement with the reference on any
# number of sequences; any other row only when its tokens equal the reference's over at least AGREEMENT_MIN_SEQUENCES
# sequences (one batch-1 prompt is luck, not evidence).
AGREEMENT_MIN_SEQUENCES = 8


class Bench:
    """The decode_bench output dirs of one model, merged: rows by (B, G, run), judged files, meta, and each
    row's share of empty answers (from its samples file)."""

    def __init__(self, dirs: list[str]):
        if not dirs:
            raise UserError("no decode_bench output dir given")
        self.dirs, self.rows, self.judged, self.meta, self.empty = dirs, {}, {}, {}, {}
        for d in dirs:
            res, judged = read_bench(d)
            self.meta = self.meta or res["meta"]
            for r in res["rows"]:
                key = (r["batch_size"], r["gen_length"], r["run"])
                self.rows[key] = r
                if r.get("samples") and os.path.isfile(os.path.join(d, r["samples"])):
                    self.empty[key] = empty_share(os.path.join(d, r["samples"]))
            self.judged.update(judged)

    def measured(self, B: int, G: int) -> dict[str, dict]:
        return {run: r for (b, g, run), r in self.rows.items() if b == B and g == G and "skipped" not in r}

    def has_reference(self, B: int, G: int) -> bool:
        """Whether the runs hold a measured ``llada`` row at batch ``B``, length ``G`` (a key can be chosen there)."""
        return "llada" in self.measured(B, G)

    def min_agreement(self, G: int, run: str) -> float | None:
        """The smallest share of the row's tokens equal to llada's over the batch sizes measured at ``G``; None
        when that rests on fewer than AGREEMENT_MIN_SEQUENCES sequences (a row's ``sequences``: its batch size, or
        the prompts of ``decode_bench.py --b1-prompts``) and the row is not exact by construction."""
        found = [(r.get("agreement"), r.get("sequences", b)) for (b, g, n), r in self.rows.items()
                 if g == G and n == run and "skipped" not in r and r.get("agreement") is not None]
        if not found or (run.partition("@")[0] not in EXACT_BY_CONSTRUCTION
                         and sum(b for _, b in found) < AGREEMENT_MIN_SEQUENCES):
            return None
        return min(v for v, _ in found)

    def max_empty(self, G: int, run: str) -> float | None:
        vals = [v for (b, g, n), v in self.empty.items() if g == G and n == run]
        return max(vals) if vals else None

    def choose(self, B: int, G: int) -> tuple[Choice, dict[str, dict]]:
        rows = self.measured(B, G)
        if "llada" not in rows:
            raise UserError(f"{self.dirs}: no llada row at batch {B}, length {G}")
        paired = {run: paired_quality(self.judged, G, run, B) for run in rows}  # (row's, llada's at its batch)
        q = {k: v for k, (v, _) in paired.items() if v is not None}
        refs = {k: ref for k, (_, ref) in paired.items()}
        agree = {run: self.min_agreement(G, run) for run in rows}
        speed = {run: r["speedup"] for run, r in rows.items()}
        empty = {run: self.max_empty(G, run) for run in rows}
        return choose_speedup_row(speed, q, agree, empty={k: v for k, v in empty.items() if v is not None},
                                  references=refs), q

    def stamp(self) -> dict[str, Any]:
        m = self.meta
        return {"gpu": m.get("device"), "torch": m.get("torch"), "transformers": m.get("transformers"),
                "dtype": m.get("dtype"), "model": m.get("model"), "block_length": m.get("block_length"),
                "command": m.get("command"), "date": m.get("date"), "source": self.dirs, "written_by": WRITTEN_BY}


def empty_share(samples_path: str) -> float | None:
    """Share of the samples (decode_bench JSONL, cut at EOS) whose text is empty or whitespace; None if none."""
    with open(samples_path, encoding="utf-8") as f:
        texts = [json.loads(line).get("text", "") for line in f if line.strip()]
    return sum(not t.strip() for t in texts) / len(texts) if texts else None


def speedup_key(bench: Bench, G: int, B: int = 1) -> dict[str, Any]:
    choice, _ = bench.choose(B, G)
    rows = bench.measured(B, G)
    out = {"value": choice.speedup, "row": choice.row, "why": choice.why, "batch_size": B, "gen_length": G,
           "unit": "x tokens/s over LLaDA's generate() loop re-implemented (uncached, 1 token/step, all columns)",
           "goal": ">= 10" if G == 512 else ">= 20" if G == 1024 else None,
           "quality_rule": f"genppl <= {GENPPL_RATIO_MAX}x llada's and unigram entropy within {ENTROPY_TOL_NATS} nats "
                           "(judged on the batch-64 samples of the same row and length), or all tokens equal",
           "speedup_over_uncached": _ratio(rows, choice.row, "uncached"),
           "reference_estimated": bool(rows["llada"].get("repeats") == 0),
           "all_rows": {k: {"speedup": r["speedup"], "tokens_per_s": r["tokens_per_s"], "nfe": r["nfe"],
                            "agreement_with_llada": r.get("agreement")} for k, r in rows.items()},
           "rejected": choice.rejected}
    return out | bench.stamp()


def _ratio(rows: dict[str, dict], a: str | None, b: str) -> float | None:
    if a is None or a not in rows or b not in rows or not rows[b]["tokens_per_s"]:
        return None
    return round(rows[a]["tokens_per_s"] / rows[b]["tokens_per_s"], 2)


def genppl_key(bench: Bench, row: str | None, G: int = 512) -> dict[str, Any]:
    ref = quality(bench.judged, G, "llada", 64)
    runs = sorted({run for (b, g, run) in bench.rows if g == G})
    qs = {run: paired_quality(bench.judged, G, run, 64) for run in runs}  # each row against llada at its batch
    per = {run: {"genppl": round(v["genppl"], 3), "entropy": round(v["entropy"], 4),
                 "genppl_ratio": round(v["genppl"] / r["genppl"], 3) if r else None,
                 "entropy_delta": round(v["entropy"] - r["entropy"], 4) if r else None, "samples": v["samples"],
                 "judged_batch_size": v["batch_size"]}
           for run, (v, r) in qs.items() if v is not None}
    value = per.get(row, {}).get("genppl_ratio") if row else None
    missing = None if value is not None else ("the chosen row is not judged (its tokens equal llada's: ratio 1 by "
                                              "construction)" if row else "no row chosen") if ref else "llada not judged"
    return {"value": value, "row": row, "gen_length": G, "goal": f"<= {GENPPL_RATIO_MAX}",
            "unit": "genppl(row) / genppl(llada), SmolLM2-135M judge, token-weighted", "per_row": per,
            "missing": missing} | bench.stamp()


def missing_length_key(G: int) -> dict[str, Any]:
    """A ``by_model`` entry for a model whose runs have no batch-1 ``llada`` row at length ``G`` (not measured there)."""
    return {"value": None, "row": None, "gen_length": G, "missing": f"no batch-1 llada row at length {G} in these runs"}


def tokens_per_s_key(bench: Bench, lengths: list[int], head: int = 512) -> dict[str, Any]:
    """Batch-1 tokens/s of the chosen row at each length of ``lengths`` that was measured (None elsewhere); the value:
    at ``head``."""
    per = {}
    for G in lengths:
        if not bench.has_reference(1, G):
            per[str(G)] = {"row": None, "tokens_per_s": None}
            continue
        choice, _ = bench.choose(1, G)
        r = bench.measured(1, G).get(choice.row or "")
        per[str(G)] = {"row": choice.row, "tokens_per_s": r["tokens_per_s"] if r else None}
    return {"value": per[str(head)]["tokens_per_s"], "row": per[str(head)]["row"], "gen_length": head,
            "unit": "generated tokens/s, batch 1, the chosen (quality-passing) row", "goal": ">= 2000",
            "per_length": per} | bench.stamp()


def sampler_key(path: str, previous: dict | None, row_name: str | None = None,
                per_step: bool = False) -> dict[str, Any]:
    """``sampler_overhead_pct`` from eval/bench_sampler.py's JSON: the first row's synced overhead, or the row named
    ``row_name`` (e.g. a run whose first row is known to be invalid). ``per_step``: the value is that (graphed) row's
    overhead per extra step as a % of one forward (the per-generation costs cancelled), its whole-call share beside."""
    d = read_json(path, "bench_sampler output")
    if not isinstance(d.get("rows"), list) or not d["rows"] or not isinstance(d.get("meta"), dict):
        raise UserError(f"{path!r} has no 'meta' and 'rows': not written by eval/bench_sampler.py")
    named = [r for r in d["rows"] if r.get("strategy") == row_name]
    if row_name is not None and not named:
        raise UserError(f"{path!r} has no row {row_name!r}; rows: {', '.join(r.get('strategy', '?') for r in d['rows'])}")
    row, m = (named[0] if named else d["rows"][0]), d["meta"]
    graphed = {r["strategy"]: r["overhead_pct"] for r in d["rows"] if r.get("overhead_synced_pct") is None}
    if per_step:
        if row.get("overhead_per_step_pct") is None:
            raise UserError(f"row {row['strategy']!r} of {path!r} has no per-step overhead (a graphed row with a "
                            "schedule's step count has one)")
        head = {"value": row["overhead_per_step_pct"], "row": row["strategy"], "goal": "<= 3",
                "unit": "% of one forward's time (CUDA-graph replays), the sampler's time per extra step "
                        "(two step counts: per-generation costs cancelled)",
                "whole_call_pct": row["overhead_pct"]}
    else:
        head = {"value": row["overhead_synced_pct"], "row": row["strategy"], "goal": "<= 3",
                "unit": "% of wall time outside the model's forwards (each forward timed between GPU synchronisations)",
                "overhead_over_back_to_back_forwards_pct": row["overhead_pct"]}
    out = head | {
           "cuda_graphs_rows": graphed,
           "all_rows": {r["strategy"]: r["overhead_synced_pct"] for r in d["rows"]},
           # per extra step, % of a forward (two step counts, the per-generation costs cancelled; bench_sampler.py)
           "cuda_graphs_rows_per_step": {r["strategy"]: r["overhead_per_step_pct"] for r in d["rows"]
                                         if r.get("overhead_per_step_pct") is not None},
           "model": m.get("model"), "row_stats": m.get("row_stats_used", m.get("row_stats")),
           "gpu": m.get("device"), "torch": m.get("torch"), "command": "python " + m.get("command", ""),
           "date": m.get("date"), "source": path, "written_by": WRITTEN_BY}
    if previous and (previous.get("written_by") != WRITTEN_BY or previous.get("unit") != out["unit"]):
        # another writer's figure, or the same key measured another way: kept beside, never compared silently
        out["before"] = {k: previous.get(k) for k in ("value", "row", "unit", "gpu", "date", "source")}
    elif previous and "before" in previous:  # rewritten the same way: the earlier measure stays recorded
        out["before"] = previous["before"]
    return out


def nelbo_key(nelbo_dirs: str | list[str], block_sizes: tuple[int, ...] = (4, 16, 64)) -> dict[str, Any]:
    """BD3 NELBO / MDM NELBO per block size from NAME_eval_metrics.json files (eval/gpu/decode_train.sh). With
    several dirs (runs of different lengths) the first gives ``value``; each other one is kept under ``other_runs``
    (its steps, ratios and NELBOs)."""
    first, *rest = [nelbo_dirs] if isinstance(nelbo_dirs, str) else nelbo_dirs
    out = _nelbo_run(first, block_sizes)
    if rest:
        out["other_runs"] = [{"steps": run["training"].get("steps")}
                             | {k: run[k] for k in ("value", "nelbo_nats_per_token", "missing", "date", "source")}
                             for run in (_nelbo_run(d, block_sizes) for d in rest)]
        later = "; ".join(f"block {b}: {r} at {o['steps']} steps" for o in out["other_runs"]
                          for b, r in o["value"].items() if r is not None)
        out["note"] = f"value: the {out['training'].get('steps')}-step run (the first given); other_runs give {later}"
    return out


def _nelbo_run(nelbo_dir: str, block_sizes: tuple[int, ...]) -> dict[str, Any]:
    """The key's fields for one training run's dir."""
    def nll(name: str) -> float | None:
        p = os.path.join(nelbo_dir, f"{name}_eval_metrics.json")
        return float(read_json(p, "eval metrics")["eval_nll"]) if os.path.isfile(p) else None

    mdm = nll("mdm")
    if mdm is None:
        raise UserError(f"{nelbo_dir}: no mdm_eval_metrics.json (the MDM's validation NELBO)")
    train = read_json(os.path.join(nelbo_dir, "train_meta.json"), "training record")
    per = {str(b): nll(f"bd3_{b}") for b in block_sizes}
    return {"value": {b: (round(v / mdm, 4) if v is not None else None) for b, v in per.items()},
            "unit": "validation NELBO (nats/token) of the BD3 model / the bidirectional MDM's, equal training tokens",
            "nelbo_nats_per_token": {"mdm": round(mdm, 4)} | {f"bd3_{b}": (round(v, 4) if v else None) for b, v in per.items()},
            "missing": [f"bd3_{b}" for b, v in per.items() if v is None] or None,
            "training": train, "gpu": train.get("gpu"), "command": train.get("command"), "date": train.get("date"),
            "source": nelbo_dir, "written_by": WRITTEN_BY}
