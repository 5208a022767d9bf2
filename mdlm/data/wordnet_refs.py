"""What a content metric needs to know about a WordNet word (``mdlm.evaluation.sft_content``), computed here once
and carried as JSON to machines without WordNet:

* ``heads`` — the **gloss head word** of every synset of the word (:func:`gloss_head`);
* ``synset_lemmas`` — the other lemmas of those synsets (what "Give a synonym of X." may answer, exactly);
* ``hypernym_lemmas`` — the lemmas of those synsets' hypernyms (pointer ``@``, instance hypernyms ``@i``).

Definition of the gloss head word (deterministic, no tagger): the definition (gloss before its examples) is
lower-cased and split into letter runs; reading left to right, skipping :data:`STOPWORDS`, the head is the first token
whose base form (:func:`base_forms`) is a WordNet lemma of the synset's own part of speech (nouns for a noun synset,
verbs for a verb synset, nouns/verbs/adjectives for adjective and adverb synsets) and, for noun and verb synsets, is
not also an adjective or adverb lemma (so the modifier in "a large body of water" is passed over for "body"). None
when no token qualifies.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from .wordnet import POS_FILES, WORDNET_DIR, _is_variant, _norm, split_gloss

STOPWORDS = frozenset(
    ["a", "an", "the", "of", "or", "and", "to", "in", "on", "at", "for", "with", "by", "from", "as", "into", "onto", "about", "over", "under", "than", "that", "which", "who", "whom", "whose", "what", "when", "where", "this", "these", "those", "it", "its", "one", "ones", "any", "some", "each", "every", "all", "no", "not", "something", "someone", "somebody", "anything", "being", "be", "is", "are", "was", "were", "been", "has", "have", "having", "do", "does", "especially", "usually", "often", "very", "more", "most", "much", "many", "such", "other", "another", "same", "particular", "certain", "specific", "e", "g", "i", "etc", "also", "either", "neither", "both"]
)
_LETTERS = re.compile(r"[a-z]+")


def base_forms(token: str) -> list[str]:
    """``token`` and its regular base forms (plural / past / participle / comparative suffixes removed), in the order
    tried: token, -s, -es, -ies→y, -ed, -ed→e, -ing, -ing→e, -er, -est."""
    t = token
    out = [t]
    rules = (("ies", "y"), ("es", ""), ("s", ""), ("ed", ""), ("ed", "e"), ("ing", ""), ("ing", "e"), ("er", ""),
             ("est", ""))
    for suf, rep in rules:
        if t.endswith(suf) and len(t) - len(suf) >= 2:
            out.append(t[: -len(suf)] + rep)
    return out


def gloss_head(definition: str, pos: str, lexicon: Mapping[str, frozenset[str]]) -> str | None:
    """The head word of a synset's definition (module docstring); ``lexicon`` maps n / v / a / r to lemma sets
    (lower-case, spaces for underscores)."""
    wanted = {"n": ("n",), "v": ("v",)}.get(pos, ("n", "v", "a"))
    modifiers = ("a", "r") if pos in ("n", "v") else ()
    for tok in _LETTERS.findall(definition.lower()):
        if tok in STOPWORDS or len(tok) < 2:
            continue
        for b in base_forms(tok):
            if any(b in lexicon[p] for p in wanted):
                if any(tok in lexicon[p] or b in lexicon[p] for p in modifiers):
                    break  # a modifier: try the next token
                return b
    return None


def _parse(line: str) -> tuple[tuple[int, str], str, list[str], list[tuple[int, str]], str]:
    """((offset, pos key), ss_type, lemmas, hypernym keys, definition) of one data-file line."""
    head, _, gloss = line.partition("|")
    f = head.split()
    offset, ss_type, w_cnt = int(f[0]), f[2], int(f[3], 16)
    lemmas = [re.sub(r"\((?:a|p|ip)\)$", "", f[4 + 2 * i]).replace("_", " ").lower() for i in range(w_cnt)]
    i = 4 + 2 * w_cnt
    p_cnt = int(f[i])
    hyper = []
    for j in range(p_cnt):
        sym, off, ppos = f[i + 1 + 4 * j : i + 4 + 4 * j]
        if sym in ("@", "@i"):
            hyper.append((int(off), "a" if ppos == "s" else ppos))
    pos_key = "a" if ss_type == "s" else ss_type
    return (offset, pos_key), ss_type, lemmas, hyper, split_gloss(gloss)[0]


def load_synsets(wordnet_dir: str = WORDNET_DIR) -> dict[tuple[int, str], tuple[str, list[str], list, str]]:
    """(offset, pos) → (ss_type, lemmas, hypernym keys, definition) for every synset of ``wordnet_dir``."""
    import os

    out = {}
    for name in POS_FILES:
        path = os.path.join(wordnet_dir, f"data.{name}")
        if not os.path.isfile(path):
            continue
        with open(path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.strip() and not line[0].isspace():
                    key, ss_type, lemmas, hyper, definition = _parse(line)
                    out[key] = (ss_type, lemmas, hyper, definition)
    if not out:
        raise ValueError(f"no WordNet data.* files in {wordnet_dir!r} (Debian: apt-get install wordnet-base)")
    return out


def lexicon_of(synsets: Mapping) -> dict[str, frozenset[str]]:
    """Part of speech (n, v, a, r) → every lemma of that part of speech."""
    lex: dict[str, set[str]] = {"n": set(), "v": set(), "a": set(), "r": set()}
    for (_, pos), (_, lemmas, _, _) in synsets.items():
        lex[pos].update(lemmas)
    return {k: frozenset(v) for k, v in lex.items()}


def word_refs(words: Iterable[str], synsets: Mapping, lexicon: Mapping[str, frozenset[str]]) -> dict[str, dict]:
    """For each word: ``heads``, ``synset_lemmas``, ``hypernym_lemmas`` (module docstring), sorted lists; the word
    itself and its mere spelling/inflection variants are left out of the lemma lists."""
    wanted = {w.replace("_", " ").lower() for w in words}
    found: dict[str, dict[str, set[str]]] = {w: {"heads": set(), "synset_lemmas": set(), "hypernym_lemmas": set()}
                                            for w in wanted}
    for ss_type, lemmas, hyper, definition in synsets.values():
        for w in wanted.intersection(lemmas):
            r = found[w]
            head = gloss_head(definition, ss_type if ss_type != "s" else "a", lexicon)
            if head:
                r["heads"].add(head)
            r["synset_lemmas"].update(lemmas)
            for h in hyper:
                if h in synsets:
                    r["hypernym_lemmas"].update(synsets[h][1])
    return {w: {k: _without_word(w, v) for k, v in r.items()} for w, r in found.items()}


def _without_word(word: str, terms: set[str]) -> list[str]:
    """``terms`` sorted, without ``word`` and its spelling/inflection variants."""
    nw = _norm(word)
    return sorted(x for x in terms if not _is_variant(nw, _norm(x)))
