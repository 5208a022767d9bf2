"""Content metrics of instruction-tuned answers to held-out WordNet words (issue #16: "content, not only form"),
pure functions over the references of :func:`mdlm.data.wordnet_refs.word_refs`:

* **definition content** — the share of "Define X." answers that name, as a whole word in any regular inflection
  (:func:`mdlm.data.wordnet.contains_word`), the gloss head word of one of X's synsets or a synonym: another lemma of
  one of X's synsets or a lemma of one of their hypernyms. Naming X itself does not count.
* **synonym exact match** — the share of "Give a synonym of X." answers that, normalised (:func:`normalise_answer`),
  equal one of the other lemmas of X's synsets.

Both are lenient about form and strict about content: a well-formed but wrong answer scores 0, and a polysemous X
(many synsets) accepts more terms than a rare one — compare models on the same words, not words with each other.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from ..data.wordnet import contains_word

_EDGE = re.compile(r"^[\s\"'`*]+|[\s\"'`*.!?,;:]+$")


def normalise_answer(text: str) -> str:
    """The first line of ``text``, lower-cased, underscores as spaces, runs of spaces as one, surrounding quotes and
    final punctuation removed ("Sea." → "sea")."""
    line = text.strip().split("\n", 1)[0] if text.strip() else ""
    return " ".join(_EDGE.sub("", line.replace("_", " ")).lower().split())


def definition_terms(ref: Mapping[str, Sequence[str]]) -> list[str]:
    """The terms a definition may name: gloss heads, synset lemmas and hypernym lemmas (deduplicated, sorted)."""
    return sorted(set(ref.get("heads", ())) | set(ref.get("synset_lemmas", ())) | set(ref.get("hypernym_lemmas", ())))


def definition_hit(answer: str, word: str, ref: Mapping[str, Sequence[str]]) -> str | None:
    """The first term of :func:`definition_terms` that ``answer`` names (None: none). Terms that are ``word`` itself
    or contain it are skipped (repeating the word defines nothing)."""
    for term in definition_terms(ref):
        if contains_word(term, word) or contains_word(word, term):
            continue
        if contains_word(answer, term):
            return term
    return None


def synonym_exact(answer: str, ref: Mapping[str, Sequence[str]]) -> bool:
    """Whether the normalised answer is one of the word's other synset lemmas."""
    return normalise_answer(answer) in {normalise_answer(x) for x in ref.get("synset_lemmas", ())}


def content_scores(rows: Sequence[Mapping], answers: Sequence[str], refs: Mapping[str, Mapping]) -> dict:
    """Per-task shares over ``rows`` (dicts with ``task`` in define / synonym and ``word``) and their answers; rows
    of other tasks or of words without references are not scored. Returns ``{"define": {"share", "n", "hits"},
    "synonym": {"share", "n", "hits"}, "per_row": [...]}`` (per_row: the matched term, True/False, or None)."""
    per_row: list = []
    tally = {"define": [0, 0], "synonym": [0, 0]}
    for row, ans in zip(rows, answers):
        word, task = row.get("word"), row.get("task")
        ref = refs.get(str(word).lower()) if word else None
        if ref is None or task not in tally:
            per_row.append(None)
            continue
        if task == "define":
            hit = definition_hit(ans, word, ref)
            per_row.append(hit or False)
        else:
            hit = synonym_exact(ans, ref)
            per_row.append(hit)
        tally[task][0] += bool(hit)
        tally[task][1] += 1
    out = {t: {"share": (h / n if n else float("nan")), "hits": h, "n": n} for t, (h, n) in tally.items()}
    out["per_row"] = per_row
    return out


def pick_rows(rows: Sequence[Mapping], refs: Mapping[str, Mapping], n_per_task: int, seed: int = 0,
              n_other: int = 4) -> list[dict]:
    """A fixed evaluation subset: ``n_per_task`` held-out WordNet define and synonym rows of words with references
    (one row per prompt), then ``n_other`` rows of each other source (for the side-by-side table only)."""
    import random

    seen: set[str] = set()
    by_key: dict[str, list[dict]] = {}
    for r in rows:
        if r["prompt"] in seen:
            continue
        seen.add(r["prompt"])
        if r.get("source") == "wordnet":
            if r.get("task") in ("define", "synonym") and str(r.get("word")).lower() in refs:
                by_key.setdefault(r["task"], []).append(dict(r))
        else:
            by_key.setdefault(str(r.get("source")), []).append(dict(r))
    out: list[dict] = []
    for key in ["define", "synonym"] + sorted(k for k in by_key if k not in ("define", "synonym")):
        got = sorted(by_key.get(key, []), key=lambda r: r["prompt"])
        random.Random(seed).shuffle(got)
        out += got[: n_per_task if key in ("define", "synonym") else n_other]
    return out


def _cell(text, limit: int = 110) -> str:
    text = " ".join(str(text or "").split())
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    return text.replace("|", "\\|") or "∅"


def side_by_side_markdown(rows: Sequence[Mapping], answers: Mapping[str, Sequence[str]], marks: Mapping[str, Sequence],
                          limit: int) -> str:
    """A markdown table: prompt, reference and each model's answer (✓ / ✗ where a content metric scored it), over
    the first ``limit`` rows of each task/source (interleaved so every kind appears)."""
    names = list(answers)
    kinds: dict[str, list[int]] = {}
    for i, r in enumerate(rows):
        kinds.setdefault(r.get("task") if r.get("source") == "wordnet" else r.get("source"), []).append(i)
    per = max(1, limit // max(1, len(kinds)))
    picked = [i for idx in kinds.values() for i in idx[:per]]
    lines = ["| prompt | reference | " + " | ".join(names) + " |", "|---|---|" + "---|" * len(names)]
    for i in picked:
        cells = []
        for n in names:
            m = marks.get(n, [None] * len(rows))[i]
            cells.append(_cell(answers[n][i]) + ("" if m is None else (" ✓" if m else " ✗")))
        lines.append(f"| {_cell(rows[i]['prompt'], 50)} | {_cell(rows[i].get('response'), 70)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
