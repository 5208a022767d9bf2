"""The held-out SFT data that training (recipes/sft_lora.py) and evaluation (eval/sft_eval.py) share: the
WordNet instruction set split by held-out *words* (cached on disk), the fixed evaluation subset and a row's
user prompt — one definition, so both report numbers on the same examples."""

from __future__ import annotations

import hashlib
import json
import os

from .wordnet import WORDNET_DIR

EVAL_SELECT_SEED = 1234  # the held-out subset is the same for every run (comparable eval_nll)
DATA_CACHE_VERSION = 1


def _wordnet_cache_key(wordnet_dir: str, heldout_fraction: float) -> str:
    stats = []
    for name in sorted(os.listdir(wordnet_dir)):
        if name.startswith("data.") or name.endswith(".exc"):
            st = os.stat(os.path.join(wordnet_dir, name))
            stats.append((name, st.st_size, int(st.st_mtime)))
    blob = json.dumps([DATA_CACHE_VERSION, os.path.abspath(wordnet_dir), heldout_fraction, stats])
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def wordnet_data(wordnet_dir: str = WORDNET_DIR, heldout_fraction: float = 0.05, cache_dir: str | None = None):
    """``build_wordnet_sft`` (train / heldout), cached on disk: building parses all of WordNet (about
    a minute); the cache is keyed by the files' sizes and mtimes and the held-out fraction."""
    from datasets import DatasetDict, load_from_disk

    from .wordnet import build_wordnet_sft

    if not os.path.isdir(wordnet_dir):
        raise ValueError(f"WordNet dir {wordnet_dir!r} does not exist (Debian: apt-get install wordnet-base)")
    root = cache_dir or os.environ.get("MDLM_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "mdlm")
    path = os.path.join(root, f"wordnet_sft-{_wordnet_cache_key(wordnet_dir, heldout_fraction)}")
    if os.path.isdir(path):
        return load_from_disk(path)
    data: DatasetDict = build_wordnet_sft(wordnet_dir, heldout_fraction=heldout_fraction)
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        data.save_to_disk(tmp)
        os.replace(tmp, path)
    except OSError:  # read-only or raced: the data in memory is fine
        pass
    return load_from_disk(path) if os.path.isdir(path) else data


def select_eval(ds, n: int | None):
    """The fixed held-out subset scored by the recipe and by eval/sft_eval.py."""
    if n is None or n >= len(ds):
        return ds
    return ds.shuffle(seed=EVAL_SELECT_SEED).select(range(n))


def row_prompt(row) -> str:
    """The user prompt of a row (prompt/response or messages)."""
    if "messages" in row and row["messages"]:
        return [m for m in row["messages"] if m["role"] == "user"][-1]["content"]
    return row["prompt"]
