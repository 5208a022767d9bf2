"""WordNet 3.0 → a small instruction-tuning set (define / synonym / sentence).

Parsing: the ``data.{noun,verb,adj,adv}`` database files (Debian ``wordnet-base`` puts them in
``/usr/share/wordnet``). Lines starting with whitespace are the license header and are skipped;
every other line is one synset::

    offset lex_filenum ss_type w_cnt(hex) [word lex_id(hex)]×w_cnt p_cnt [ptr]×p_cnt [frames] | gloss

The gloss holds the definition, then example sentences in double quotes separated by ``;``.
Adjective markers such as ``(a)``, ``(p)``, ``(ip)`` are stripped from words.

Instruction pairs, one per (word, synset) and task, exact duplicates dropped:

* ``define``   — ``"Define {word}."`` → the synset's definition;
* ``synonym``  — ``"Give a synonym of {word}."`` → the first other lemma of the synset that is not just
  an inflection/spelling variant of the word (only where one exists; underscores become spaces);
* ``sentence`` — ``"Use {word} in a sentence."`` → the first of the synset's example sentences that
  contains the word or an inflection of it (first letter capitalised, ``.`` added when it lacks
  final punctuation).

Held-out split: BY WORD, from a stable hash (BLAKE2b) of the lower-cased lemma, so every pair whose
prompt names a held-out word — in any sense, part of speech or task — is held out, and no held-out
word is the subject of a train prompt. (Held-out words may still occur inside train *responses*,
e.g. as a synonym, or as one token of a longer train lemma.)

:func:`check_format` scores whether a generated answer has the expected shape — used for the "share
of answers in the expected format" metric.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

from datasets import Dataset, DatasetDict

log = logging.getLogger(__name__)

WORDNET_DIR = os.environ.get("MDLM_WORDNET_DIR") or "/usr/share/wordnet"  # Debian wordnet-base
POS_FILES = {"noun": "n", "verb": "v", "adj": "a", "adv": "r"}
TASKS = ("define", "synonym", "sentence")
PROMPTS = {
    "define": "Define {word}.",
    "synonym": "Give a synonym of {word}.",
    "sentence": "Use {word} in a sentence.",
}
# check_format limits: over 99% of WordNet's own answers pass (test_real_wordnet_smoke checks > 97%).
MAX_SYNONYM_WORDS = 6
MAX_DEFINE_WORDS = 60
MAX_SENTENCE_WORDS = 60

_ADJ_MARKER = re.compile(r"\((?:a|p|ip)\)$")
_QUOTED = re.compile(r'"([^"]*)"')
_NONWORD = re.compile(r"[\W_]+")
_END_PUNCT = re.compile(r"[.!?][\"')\]]*$")


class Synset(NamedTuple):
    """One synset line. ``lemmas`` keep WordNet's spelling (underscores for spaces)."""

    offset: int
    lex_filenum: int
    pos: str  # n, v, a, s (adjective satellite), r
    lemmas: tuple[str, ...]
    definition: str
    examples: tuple[str, ...]


# ----------------------------------------------------------------------------------------- parsing
def split_gloss(gloss: str) -> tuple[str, tuple[str, ...]]:
    """Split a gloss into (definition, examples). The definition is everything before the first
    double quote that opens the gloss or follows ``"; "``; examples are the quoted strings after it
    (attributions outside the quotes are dropped)."""
    gloss = gloss.strip()
    if '"' not in gloss:
        return gloss.rstrip(";").strip(), ()
    if gloss.startswith('"'):
        cut = 0
    else:
        m = re.search(r';\s*"', gloss)
        cut = m.start() if m else len(gloss)
    definition = gloss[:cut].strip().rstrip(";").strip()
    examples = tuple(e.strip() for e in _QUOTED.findall(gloss[cut:]) if e.strip())
    return definition, examples


def parse_synset_line(line: str) -> Synset:
    """Parse one data-file line; raises ValueError when it is malformed."""
    head, sep, gloss = line.partition("|")
    if not sep:
        raise ValueError("no '|' gloss separator")
    try:
        f = head.split(None, 4)
        offset, lex_filenum, pos, w_cnt = int(f[0]), int(f[1]), f[2], int(f[3], 16)
        rest = f[4].split(None, 2 * w_cnt + 1)
        words = rest[0 : 2 * w_cnt : 2]
        p_cnt = int(rest[2 * w_cnt])
    except (IndexError, ValueError) as e:
        raise ValueError(f"bad synset header: {e}") from None
    if pos not in ("n", "v", "a", "s", "r") or w_cnt == 0 or len(words) != w_cnt:
        raise ValueError(f"bad synset header (ss_type {pos!r}, w_cnt {w_cnt}, words {words})")
    if p_cnt and (len(rest) < 2 * w_cnt + 2 or len(rest[-1].split()) < 4 * p_cnt):
        raise ValueError(f"line has fewer fields than its {p_cnt} pointers need")
    lemmas = tuple(_ADJ_MARKER.sub("", w) for w in words)
    definition, examples = split_gloss(gloss)
    return Synset(offset, lex_filenum, pos, lemmas, definition, examples)


def iter_synsets(path: str | os.PathLike, *, skip_malformed: bool = False) -> Iterator[Synset]:
    """Synsets of one ``data.*`` file. Header lines (leading whitespace) and blank lines are skipped;
    a malformed line raises ValueError naming the file and line, or is skipped (and counted in a
    warning) with ``skip_malformed``."""
    bad = 0
    with open(path, encoding="utf-8", errors="replace") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip() or line[0].isspace():
                continue
            try:
                yield parse_synset_line(line)
            except ValueError as e:
                if not skip_malformed:
                    raise ValueError(f"{path}:{n}: malformed WordNet line: {e}") from None
                bad += 1
    if bad:
        log.warning("%s: skipped %d malformed lines", path, bad)


def load_wordnet(
    wordnet_dir: str | os.PathLike = WORDNET_DIR, *, skip_malformed: bool = False
) -> list[Synset]:
    """All synsets of the ``data.noun/verb/adj/adv`` files present in ``wordnet_dir`` (at least one)."""
    paths = [Path(wordnet_dir) / f"data.{p}" for p in POS_FILES]
    paths = [p for p in paths if p.is_file()]
    if not paths:
        raise FileNotFoundError(f"no WordNet data.* files in {wordnet_dir}")
    return [s for p in paths for s in iter_synsets(p, skip_malformed=skip_malformed)]


def load_exceptions(wordnet_dir: str | os.PathLike = WORDNET_DIR) -> dict[str, set[str]]:
    """Irregular forms from WordNet's ``*.exc`` files: base form → {inflected forms}, e.g.
    ``"run" → {"ran"}`` (empty when the files are absent)."""
    table: dict[str, set[str]] = {}
    for pos in POS_FILES:
        p = Path(wordnet_dir) / f"{pos}.exc"
        if not p.is_file():
            continue
        for line in p.read_text(encoding="utf-8", errors="replace").splitlines():
            parts = line.split()
            for base in parts[1:]:
                table.setdefault(_norm(base), set()).add(_norm(parts[0]))
    return table


# ------------------------------------------------------------------------------------ inflections
def _norm(text: str) -> str:
    """Lower-case, every run of non-alphanumerics (incl. ``_``, ``-``, ``'``) → one space."""
    return _NONWORD.sub(" ", text.lower()).strip()


@lru_cache(maxsize=None)
def _token_forms(w: str) -> frozenset[str]:
    """Regular English inflections of one lower-case token (over-generating is harmless here)."""
    forms = {w, w + "s", w + "es", w + "d", w + "ed", w + "ing", w + "r", w + "er", w + "st", w + "est"}
    if len(w) > 1 and w[-1] == "y" and w[-2] not in "aeiou":
        forms |= {w[:-1] + s for s in ("ies", "ied", "ier", "iest")}
    if w.endswith("e"):
        forms.add(w[:-1] + "ing")
    if w.endswith("ie"):
        forms.add(w[:-2] + "ying")
    if len(w) > 2 and w[-1] not in "aeiouwxy" and w[-2] in "aeiou":
        forms |= {w + w[-1] + s for s in ("ed", "ing", "er", "est")}
    if w.endswith("c"):
        forms |= {w + "ked", w + "king"}
    for old, new in (("man", "men"), ("fe", "ves"), ("f", "ves"), ("us", "i"), ("um", "a"), ("is", "es"), ("on", "a")):
        if w.endswith(old):
            forms.add(w[: -len(old)] + new)
    return frozenset(forms)


def _is_variant(a: str, b: str) -> bool:
    """Whether normalised lemmas ``a`` and ``b`` are equal or differ by regularly inflecting one token."""
    if a == b:
        return True
    ta, tb = a.split(), b.split()
    if len(ta) != len(tb):
        return False
    diff = [(x, y) for x, y in zip(ta, tb) if x != y]
    if len(diff) != 1:
        return False
    x, y = diff[0]
    if len(x) > 3 and len(y) > 3 and x[0] != y[0]:  # the rules only touch a token's last 3 letters
        return False
    return y in _token_forms(x) or x in _token_forms(y)


def word_forms(word: str, exceptions: Mapping[str, set[str]] | None = None) -> set[str]:
    """Normalised forms of ``word`` (a lemma, possibly multi-word): the word itself, and the word with
    any one token inflected (regular rules, plus ``exceptions`` from :func:`load_exceptions`)."""
    base = _norm(word)
    toks = base.split()
    forms = {base}
    if exceptions and base in exceptions:
        forms |= exceptions[base]
    for i, t in enumerate(toks):
        alts = _token_forms(t) | exceptions.get(t, set()) if exceptions else _token_forms(t)
        if len(toks) == 1:
            forms |= alts
        else:
            pre, post = " ".join(toks[:i] + [""]), " ".join([""] + toks[i + 1 :])
            forms |= {(pre + a + post).strip() for a in alts}
    return {f for f in forms if f}


def _has_form(norm_text: str, forms: set[str] | frozenset[str], tokens: set[str] | None = None) -> bool:
    """Whether the normalised ``norm_text`` contains one of the normalised ``forms`` as whole tokens
    (``tokens``: ``set(norm_text.split())`` when the caller has it already)."""
    tokens = set(norm_text.split()) if tokens is None else tokens
    if not tokens.isdisjoint(forms):  # single-token forms, at C speed
        return True
    multi = [f for f in forms if " " in f]
    if not multi:
        return False
    padded = f" {norm_text} "
    return any(f" {f} " in padded for f in multi)


def contains_word(text: str, word: str, exceptions: Mapping[str, set[str]] | None = None) -> bool:
    """Whether ``text`` contains ``word`` or an inflection of it as whole tokens (case-insensitive;
    spaces, hyphens, underscores and apostrophes all count as token boundaries)."""
    return _has_form(_norm(text), word_forms(word, exceptions))


# ---------------------------------------------------------------------------------------- format
def check_format(
    task: str, word: str, response: str, exceptions: Mapping[str, set[str]] | None = None
) -> bool:
    """Whether a generated ``response`` to the ``task`` prompt about ``word`` has the expected shape.

    * ``synonym``:  one line, 1–:data:`MAX_SYNONYM_WORDS` words, not ending in ``.!?``, no ``,;:``,
      and not the word itself (nor an inflection of it);
    * ``sentence``: one line, 2–:data:`MAX_SENTENCE_WORDS` words, more than the word alone, contains
      the word or an inflection (:func:`contains_word`), ends with ``.``, ``!`` or ``?`` (closing
      quotes/brackets allowed after it);
    * ``define``:   one line, 1–:data:`MAX_DEFINE_WORDS` words, does not start with the word (or an
      inflection).

    For every task an echo of the prompt itself (``"Use dog in a sentence."``) fails. Matching is
    case-insensitive; ``exceptions`` (:func:`load_exceptions`) adds irregular forms (``ran`` for ``run``).
    """
    text = response.strip()
    if not text or "\n" in text:
        return False
    norm_text = _norm(text)
    n_words = len(norm_text.split())
    if n_words == 0:
        return False
    if task not in PROMPTS:
        raise ValueError(f"unknown task {task!r}; expected one of {TASKS}")
    if norm_text == _norm(PROMPTS[task].format(word=word)):
        return False
    forms = word_forms(word, exceptions)
    if task == "synonym":
        return n_words <= MAX_SYNONYM_WORDS and not re.search(r"[.!?]$|[,;:]", text) and norm_text not in forms
    if task == "sentence":
        return (
            2 <= n_words <= MAX_SENTENCE_WORDS
            and n_words > len(_norm(word).split())
            and bool(_END_PUNCT.search(text))
            and _has_form(norm_text, forms)
        )
    padded = f"{norm_text} "  # define
    starts_with_word = any(padded.startswith(f + " ") for f in forms)
    return n_words <= MAX_DEFINE_WORDS and not starts_with_word


# ---------------------------------------------------------------------------------- instructions
def is_held_out(word: str, heldout_fraction: float = 0.05) -> bool:
    """Deterministic per-word split: BLAKE2b of the normalised lemma, bucketed in 1/10,000ths."""
    key = word.replace("_", " ").lower().strip().encode("utf-8")
    bucket = int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big") % 10_000
    return bucket < round(heldout_fraction * 10_000)


def _as_sentence(example: str) -> str:
    s = example.strip()
    s = s[0].upper() + s[1:]
    return s if _END_PUNCT.search(s) else s + "."


def _pair_tuples(
    synsets: Iterable[Synset], exceptions: Mapping[str, set[str]] | None = None
) -> Iterator[tuple[str, str, str]]:
    """(task, word, response) triples, one per (word, synset) and applicable task, duplicates dropped."""
    seen: set[tuple[str, str, str]] = set()
    cache: dict[str, set[str]] = {}
    for s in synsets:
        words = [w.replace("_", " ") for w in s.lemmas]
        multi = len(words) > 1
        norms = [_norm(w) for w in words] if multi else []
        examples = [(e, ne, set(ne.split())) for e in s.examples for ne in (_norm(e),)]
        for i, w in enumerate(words):
            cands: list[tuple[str, str]] = []
            if s.definition:
                cands.append(("define", s.definition))
            if multi:  # another lemma, skipping mere spelling/inflection variants ("group" → "grouping")
                others = (o for j, (o, no) in enumerate(zip(words, norms)) if j != i and not _is_variant(norms[i], no))
                syn = next(others, None)
                if syn is not None:
                    cands.append(("synonym", syn))
            if examples:
                forms = cache.get(w) or cache.setdefault(w, word_forms(w, exceptions))
                ex = next((e for e, ne, toks in examples if _has_form(ne, forms, toks)), None)
                if ex is not None:
                    cands.append(("sentence", _as_sentence(ex)))
            for task, response in cands:
                key = (task, w, response)
                if key not in seen:
                    seen.add(key)
                    yield key


def instruction_pairs(
    synsets: Iterable[Synset], exceptions: Mapping[str, set[str]] | None = None
) -> Iterator[dict[str, str]]:
    """Yield ``{prompt, response, task, word}`` dicts, one per (word, synset) and applicable task,
    in file order, exact duplicates dropped."""
    for task, word, response in _pair_tuples(synsets, exceptions):
        yield {"prompt": PROMPTS[task].format(word=word), "response": response, "task": task, "word": word}


def build_wordnet_sft(
    wordnet_dir: str | os.PathLike = WORDNET_DIR,
    *,
    heldout_fraction: float = 0.05,
    skip_malformed: bool = False,
) -> DatasetDict:
    """The WordNet instruction set as ``DatasetDict(train=..., heldout=...)`` with columns
    ``prompt``, ``response``, ``task``, ``word``; split by word with :func:`is_held_out`.
    Rows are in WordNet file order (noun, verb, adj, adv); shuffle downstream."""
    exceptions = load_exceptions(wordnet_dir)
    cols = ("prompt", "response", "task", "word")
    parts: dict[str, dict[str, list[str]]] = {k: {c: [] for c in cols} for k in ("train", "heldout")}
    split_of: dict[str, bool] = {}
    for task, w, response in _pair_tuples(load_wordnet(wordnet_dir, skip_malformed=skip_malformed), exceptions):
        held = split_of.get(w)
        if held is None:
            held = split_of[w] = is_held_out(w, heldout_fraction)
        dest = parts["heldout" if held else "train"]
        dest["prompt"].append(PROMPTS[task].format(word=w))
        dest["response"].append(response)
        dest["task"].append(task)
        dest["word"].append(w)
    return DatasetDict({k: Dataset.from_dict(v) for k, v in parts.items()})


def _iter_rows(rows: Dataset | Iterable[Mapping[str, str]]) -> Iterator[Mapping[str, str]]:
    if isinstance(rows, Dataset):  # batched: row-by-row Dataset access is ~100x slower
        for batch in rows.iter(batch_size=10_000):
            keys = list(batch)
            yield from (dict(zip(keys, vals)) for vals in zip(*batch.values()))
    else:
        yield from rows


def write_jsonl(rows: Dataset | Iterable[Mapping[str, str]], path: str | os.PathLike) -> int:
    """Write rows (a Dataset or dicts) as UTF-8 JSONL, one object per line; returns the row count."""
    n = 0
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        for row in _iter_rows(rows):
            fh.write(json.dumps(dict(row), ensure_ascii=False) + "\n")
            n += 1
    return n


def write_wordnet_jsonl(data: DatasetDict, out_dir: str | os.PathLike) -> dict[str, Path]:
    """Write each split of :func:`build_wordnet_sft` to ``out_dir/{split}.jsonl``."""
    out = {k: Path(out_dir) / f"{k}.jsonl" for k in data}
    for k, p in out.items():
        write_jsonl(data[k], p)
    return out
