"""A user's own text (mdlm/data/text.py): every common shape of a .txt file gives documents and a
non-empty held-out split; eval/elbo.py scores a whole file named as held-out text."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mdlm.data.text import heldout_text, load_text_corpus, local_corpus, read_local_documents

ROOT = Path(__file__).resolve().parents[1]
PARAS = [f"Paragraph {i} of the novel. It was a dark and stormy night, number {i}." for i in range(40)]


def _write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


SHAPES = {
    "one paragraph per line": "\n".join(PARAS) + "\n",
    "single blank lines": "\n\n".join(PARAS) + "\n",
    "double blank lines": "\n\n\n".join(PARAS),
    "blank lines holding spaces, CRLF": "\r\n  \r\n".join(PARAS),
    "wrapped paragraphs": "\n\n".join(p.replace(". ", ".\n") for p in PARAS),
}


@pytest.mark.parametrize("shape", list(SHAPES))
def test_every_file_shape_gives_paragraph_documents_and_both_splits(tmp_path, shape):
    f = tmp_path / "novel.txt"
    f.write_bytes(SHAPES[shape].encode())  # bytes: keep the CRLF
    dd = local_corpus(str(f))
    train, val = list(dd["train"]["text"]), list(dd["validation"]["text"])
    assert len(train) + len(val) == len(PARAS), shape
    assert len(val) >= 1 and len(train) >= 1
    assert sorted(t.replace("\n", " ") for t in train + val) == sorted(PARAS)


def test_sample_by_choices(tmp_path):
    f = _write(tmp_path, "t.txt", "a b\nc d\n\ne f\n")
    assert read_local_documents(str(f), "line") == ["a b", "c d", "e f"]
    assert read_local_documents(str(f), "paragraph") == ["a b\nc d", "e f"]
    assert read_local_documents(str(f), "document") == ["a b\nc d\n\ne f"]
    assert read_local_documents(str(f)) == ["a b\nc d", "e f"]  # auto: it has a blank line
    with pytest.raises(ValueError, match="sample_by"):
        read_local_documents(str(f), "sentence")


def test_two_paragraphs_hold_one_out(tmp_path):
    dd = load_text_corpus(str(_write(tmp_path, "two.txt", "first paragraph\n\nsecond paragraph\n")))
    assert len(dd["train"]) == 1 and len(dd["validation"]) == 1


def test_one_long_document_is_cut_and_its_tail_held_out(tmp_path):
    words = [f"w{i}" for i in range(1000)]
    f = _write(tmp_path, "one.txt", " ".join(words))  # no line break at all
    dd = local_corpus(str(f), sample_by="document")
    train, val = list(dd["train"]["text"]), list(dd["validation"]["text"])
    assert len(val) == 1 and len(train) >= 10
    assert " ".join(train + val).split() == words  # nothing lost, order kept, the tail is held out


def test_directory_of_txt_and_jsonl(tmp_path):
    _write(tmp_path, "a.txt", "alpha one\n\nalpha two\n")
    _write(tmp_path, "b.jsonl", json.dumps({"text": "beta"}) + "\n")
    assert read_local_documents(str(tmp_path)) == ["alpha one", "alpha two", "beta"]


def test_empty_file_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="holds no text"):
        local_corpus(str(_write(tmp_path, "empty.txt", "\n \n")))


def test_a_missing_path_says_so(tmp_path):
    with pytest.raises(ValueError, match="no such file or directory"):
        read_local_documents(str(tmp_path / "missing.txt"))


@pytest.mark.slow
def test_elbo_scores_a_whole_heldout_file(tmp_path):
    """eval/elbo.py --heldout-file FILE scores every token of FILE (packed at the model's context)."""
    from test_ablate import build_checkpoint_and_judge

    ckpt, _ = build_checkpoint_and_judge(tmp_path)
    f = _write(tmp_path, "mine.txt", "\n".join(PARAS[:6]))
    out = tmp_path / "elbo.json"
    r = subprocess.run([sys.executable, str(ROOT / "eval" / "elbo.py"), "--model", str(ckpt), "--heldout-file", str(f),
                        "--num-samples", "1", "--seq-len", "16", "--json", str(out)],
                       capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads(out.read_text())
    assert len(heldout_text(str(f))) == 6
    assert res["data"] == str(f) and res["tokens"] >= 16 and res["nats_per_token"] > 0


def test_a_held_out_split_shorter_than_one_row_is_scored_not_refused():
    """A small file's 5% validation split can hold fewer tokens than one sequence: it is packed as one padded row
    (its real length recorded, so only real tokens are scored), while longer splits keep whole rows only."""
    from mdlm.data.text import pack_dataset
    from mdlm.tokenizers import load_tokenizer

    tok = load_tokenizer("bpe", corpus=PARAS * 4, vocab_size=300)
    short = load_text_corpus_like([PARAS[0]])
    rows = pack_dataset(short, tok, 512, keep_tail="if_short")
    n_tokens = len(tok(PARAS[0], add_special_tokens=False)["input_ids"]) + 1  # + EOS
    assert rows["length"] == [n_tokens] and len(rows["input_ids"][0]) == 512
    with pytest.raises(ValueError, match="fewer than one sequence"):
        pack_dataset(short, tok, 512)
    long = load_text_corpus_like(PARAS * 20)
    assert pack_dataset(long, tok, 16, keep_tail="if_short")["input_ids"] == pack_dataset(long, tok, 16)["input_ids"]


def load_text_corpus_like(texts):
    from datasets import Dataset

    return Dataset.from_dict({"text": list(texts)})
