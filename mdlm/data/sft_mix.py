"""The instruction mix for SFT of the adapted SmolLM2 MDM (issue #16 item 4): WordNet (define / synonym / sentence,
``mdlm/data/wordnet.py``) + GCIDE definitions + Wikipedia "Tell me about X." + chatterbot-corpus conversations
(``mdlm/data/instructions.py``), with per-source counts and ONE held-out split by entry for all sources:
:func:`mdlm.data.wordnet.is_held_out` of the lower-cased entry key (word, headword, title, first statement), so a
word held out of WordNet is also held out of GCIDE ("Define ocean." never in both), and a title never in both.

:func:`write_mix` writes the prepared files once (the cache that travels to a GPU machine, a few MB):
``train.jsonl``, ``heldout.jsonl`` (rows of held-out entries, capped per source), ``heldout_eval.jsonl`` (the fixed
subset the trainer scores), ``content_refs.json`` (WordNet references of the held-out WordNet words, for
``mdlm.evaluation.sft_content`` on machines without WordNet) and ``mix.json`` (counts per source and split).
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Iterable, Mapping

from .wordnet import WORDNET_DIR, is_held_out

DEFAULT_COUNTS = {"wordnet": 40_000, "gcide": 25_000, "wiki": 9_000, "chatterbot": 3_000}
HELDOUT_CAP = {"wordnet": 4_000, "gcide": 1_000, "wiki": 300, "chatterbot": 200}
EVAL_PER_SOURCE = {"wordnet": 256, "gcide": 96, "wiki": 96, "chatterbot": 64}
COLUMNS = ("prompt", "response", "source", "task", "word")


def split_by_entry(rows: Iterable[Mapping], heldout_fraction: float) -> tuple[list[dict], list[dict]]:
    """(train, held-out) rows: a row is held out when its entry key (``word``) is; all rows of a key go together."""
    train, held = [], []
    for r in rows:
        row = {c: r.get(c) for c in COLUMNS}
        (held if is_held_out(str(row["word"]), heldout_fraction) else train).append(row)
    return train, held


def _take(rows: list[dict], n: int | None, seed: int) -> list[dict]:
    """A seeded random subset of ``n`` rows (all when ``n`` is None or larger), in a shuffled order."""
    rows = list(rows)
    random.Random(seed).shuffle(rows)
    return rows if n is None else rows[:n]


def source_rows(name: str, wordnet_dir: str = WORDNET_DIR) -> list[dict]:
    """Every instruction pair of one source (``wordnet``, ``gcide``, ``wiki`` or ``chatterbot``), unsplit."""
    from . import english, instructions

    if name == "wordnet":
        from .sft_sources import wordnet_data

        wn = wordnet_data(wordnet_dir)  # cached on disk; split by the same is_held_out
        return [dict(r, source="wordnet") for split in ("train", "heldout") for r in wn[split]]
    if name == "gcide":
        return list(instructions.gcide_pairs(english.gcide_entries()))
    if name == "wiki":
        return list(instructions.wiki_pairs(english.wiki_articles()))
    if name == "chatterbot":
        return list(instructions.chatterbot_pairs())
    raise ValueError(f"unknown instruction source {name!r} (wordnet, gcide, wiki, chatterbot)")


def build_mix(counts: Mapping[str, int | None], *, heldout_fraction: float = 0.05, seed: int = 0,
              loaders: Mapping | None = None) -> dict[str, list[dict]]:
    """``{"train", "heldout", "heldout_eval"}`` rows of the mix. ``counts``: source → train rows (None = all);
    ``loaders``: source → rows (tests), default :func:`source_rows`."""
    train, held, evals = [], [], []
    for i, (name, n) in enumerate(counts.items()):
        rows = loaders[name]() if loaders else source_rows(name)
        tr, he = split_by_entry(rows, heldout_fraction)
        train += _take(tr, n, seed + i)
        he = _take(he, HELDOUT_CAP.get(name), seed + 100 + i)
        held += he
        evals += he[: EVAL_PER_SOURCE.get(name, 64)]
    return {"train": _take(train, None, seed + 999), "heldout": held, "heldout_eval": evals}


def mix_counts(mix: Mapping[str, list[dict]]) -> dict[str, dict[str, int]]:
    """Rows per split and source."""
    out: dict[str, dict[str, int]] = {}
    for split, rows in mix.items():
        c: dict[str, int] = {}
        for r in rows:
            c[r["source"]] = c.get(r["source"], 0) + 1
        out[split] = dict(sorted(c.items()))
    return out


def write_mix(out_dir: str, mix: Mapping[str, list[dict]], refs: Mapping[str, dict], meta: Mapping) -> dict[str, str]:
    """Write the prepared files (module docstring) into ``out_dir`` (must be missing or empty) through a staging dir,
    so a failed write leaves no half-written set. Returns name → path."""
    from ..training.checkpoint import publish_files

    if os.path.isdir(out_dir) and [e for e in os.listdir(out_dir) if not e.startswith(".")]:
        raise ValueError(f"{out_dir!r} is not empty; choose another directory")
    staging = os.path.join(out_dir, ".staging")
    os.makedirs(staging, exist_ok=True)
    for split, rows in mix.items():
        with open(os.path.join(staging, f"{split}.jsonl"), "w", encoding="utf-8") as f:
            f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    with open(os.path.join(staging, "content_refs.json"), "w", encoding="utf-8") as f:
        json.dump(refs, f, ensure_ascii=False, sort_keys=True)
    with open(os.path.join(staging, "mix.json"), "w", encoding="utf-8") as f:
        json.dump({**meta, "counts": mix_counts(mix)}, f, indent=1)
    publish_files(staging, out_dir)
    return {n: os.path.join(out_dir, n) for n in sorted(os.listdir(out_dir)) if not n.startswith(".")}


def heldout_wordnet_refs(mix: Mapping[str, list[dict]], wordnet_dir: str = WORDNET_DIR) -> dict[str, dict]:
    """WordNet references (:func:`mdlm.data.wordnet_refs.word_refs`) of every held-out WordNet word of the mix."""
    from .wordnet_refs import lexicon_of, load_synsets, word_refs

    words = {r["word"] for r in mix["heldout"] if r["source"] == "wordnet"}
    synsets = load_synsets(wordnet_dir)
    return word_refs(words, synsets, lexicon_of(synsets))
