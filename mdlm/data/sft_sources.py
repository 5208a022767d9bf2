"""The data of LoRA SFT (``recipes/sft_lora.py``): the WordNet instruction set (built once, cached on
disk) or the user's JSONL files, a fixed held-out subset, tokenised features and their collators."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass

from ..cli import UserError
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


def raw_data(sargs, seed: int):
    """(train, heldout) rows with prompt/response (or messages) columns, before tokenising."""
    from .sft import load_sft_jsonl

    if sargs.data_files:
        train = load_sft_jsonl(sargs.data_files)
        if sargs.eval_files:
            heldout = load_sft_jsonl(sargs.eval_files)
        elif len(train) >= 2 and sargs.eval_fraction > 0:
            n_eval = max(1, round(sargs.eval_fraction * len(train)))
            split = train.train_test_split(test_size=n_eval, seed=EVAL_SELECT_SEED, shuffle=True)
            train, heldout = split["train"], split["test"]
        else:
            heldout = None
    else:
        if sargs.eval_files:
            raise UserError("--eval_files needs --data_files (WordNet brings its own held-out words)")
        wn = wordnet_data(sargs.wordnet_dir, sargs.heldout_fraction, sargs.cache_dir)
        train, heldout = wn["train"], wn["heldout"]
    train = train.shuffle(seed=seed)
    if sargs.max_train_examples:
        train = train.select(range(min(len(train), sargs.max_train_examples)))
    if heldout is not None:
        heldout = select_eval(heldout, sargs.max_eval_examples)
    return train, heldout


def tokenize(rows, tok, sargs, pad_policy: str, what: str, keep_columns=()):
    from .sft import tokenize_sft_dataset

    try:
        return tokenize_sft_dataset(
            rows, tok, max_length=sargs.max_length, pad_policy=pad_policy, padding="longest",
            truncate_prompt=sargs.truncate_prompt, keep_columns=keep_columns, num_proc=sargs.num_proc,
        )
    except ValueError as e:
        raise ValueError(f"{what}: {e}") from None


@dataclass
class SFTData:
    train: object  # tokenised features (input_ids, attention_mask, prompt_mask, length, prompt_length)
    heldout: object | None  # tokenised with eval_pad_policy
    heldout_rows: object | None  # the same held-out examples before tokenising (prompt/response/...)
    collator: object  # SFTCollator(pad_policy): its ``eligible`` = response tokens = the loss region
    eval_collator: object  # SFTCollator(eval_pad_policy)


def build_data(sargs, tok, seed: int = 0) -> SFTData:
    """Tokenised SFT features and the ``SFTCollator``s for training and held-out evaluation."""
    from .sft import SFTCollator

    rows_train, rows_eval = raw_data(sargs, seed)
    src = ", ".join(sargs.data_files) if sargs.data_files else "WordNet"
    train = tokenize(rows_train, tok, sargs, sargs.pad_policy, f"training data ({src})")
    heldout = None
    if rows_eval is not None:
        heldout = tokenize(rows_eval, tok, sargs, sargs.eval_pad_policy, "held-out data")
    collator = SFTCollator.from_tokenizer(tok, sargs.pad_policy, response_length=sargs.response_length)
    return SFTData(train, heldout, rows_eval, collator,
                   SFTCollator.from_tokenizer(tok, sargs.eval_pad_policy))
