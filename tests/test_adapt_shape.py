"""eval/adapt_shape.py + eval/adapt_tiny_source.py --config: a random model of a source's exact shape, built from a
small archive of its config and tokenizer (the GPU machine's speed test before the real weights arrive)."""

import json
import os
import subprocess
import sys
import tarfile

import pytest
from transformers import AutoConfig, AutoTokenizer

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, os.path.join(ROOT, "eval"))


@pytest.fixture
def source(tmp_path):
    from adapt_tiny_source import make_tiny_source
    from mdlm.tokenizers import load_tokenizer

    tok = load_tokenizer("gpt2")
    tok.mask_token = None
    return make_tiny_source(str(tmp_path / "src"), tok, hidden=48, layers=3, seed=1)


def test_a_random_model_from_the_shape_archive_has_the_sources_shape(source, tmp_path):
    from adapt_shape import write_shape
    from adapt_tiny_source import make_tiny_source

    archive = str(tmp_path / "shape.tar.xz")
    write_shape(archive, source, None)
    with tarfile.open(archive) as tar:
        tar.extractall(tmp_path / "x", filter="data")
    shape_dir = tmp_path / "x" / "smol_shape"
    with open(shape_dir / "random_config.json") as f:
        cfg = json.load(f)
    assert "_name_or_path" not in cfg  # where it was loaded from is not part of the shape
    out = make_tiny_source(str(tmp_path / "rand"), AutoTokenizer.from_pretrained(shape_dir), seed=5, config=cfg)
    want, got = AutoConfig.from_pretrained(source).to_dict(), AutoConfig.from_pretrained(out).to_dict()
    for key in ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                "num_key_value_heads", "tie_word_embeddings", "rope_parameters", "rms_norm_eps"):
        assert got[key] == want[key], key
    assert len(AutoTokenizer.from_pretrained(out)) == len(AutoTokenizer.from_pretrained(source))


def test_an_existing_archive_is_not_overwritten(source, tmp_path):
    archive = tmp_path / "shape.tar.xz"
    archive.write_bytes(b"keep me")
    r = subprocess.run([sys.executable, os.path.join(ROOT, "eval", "adapt_shape.py"), "--out", str(archive),
                        "--source", source], capture_output=True, text=True)
    assert r.returncode != 0 and "--overwrite" in r.stderr.strip().splitlines()[-1]
    assert archive.read_bytes() == b"keep me"
