"""Self-distilled adaptation text (mdlm.adapt.distill, recipes/distill_text.py): rows sampled from the AR source."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from mdlm.adapt.distill import merge_train, sample_rows
from mdlm.data.packed import save_packed
from test_adapt import tiny_lm, tiny_tokenizer

pytestmark = pytest.mark.usefixtures("one_thread")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_rows_are_full_length_reproducible_and_an_end_of_text_does_not_end_them():
    tok = tiny_tokenizer()
    lm = tiny_lm("llama", len(tok))
    eos = tok.eos_token_id
    lm.generation_config.eos_token_id = eos
    with torch.no_grad():  # make end-of-text likely: generate must neither stop at it nor forbid it
        lm.get_output_embeddings().weight[eos] *= 8
    rows, tps = sample_rows(lm, eos, 5, 24, batch_size=2, seed=3, progress=False)
    again, _ = sample_rows(lm, eos, 5, 24, batch_size=2, seed=3, progress=False)
    assert rows.shape == (5, 24) and tps > 0
    assert np.array_equal(rows, again)
    assert (rows == eos).sum() >= 5 and (rows != eos).any()
    assert lm.generation_config.eos_token_id == eos  # restored
    with pytest.raises(ValueError, match="temperature"):
        sample_rows(lm, eos, 2, 4, temperature=0.0)


def test_merge_keeps_every_row_once():
    real = np.arange(12).reshape(3, 4)
    distilled = 100 + np.arange(8).reshape(2, 4)
    merged = merge_train(real, distilled)
    assert merged.shape == (5, 4)
    assert sorted(map(tuple, merged.tolist())) == sorted(map(tuple, np.concatenate([real, distilled]).tolist()))
    with pytest.raises(ValueError, match="row lengths"):
        merge_train(real, distilled[:, :3])


@pytest.mark.slow
def test_recipe_merges_sampled_rows_into_a_packed_file(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("adapt_tiny_source", os.path.join(ROOT, "eval", "adapt_tiny_source.py"))
    make_tiny_source = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_tiny_source)
    make_tiny_source = make_tiny_source.make_tiny_source

    tok = tiny_tokenizer()
    make_tiny_source(str(tmp_path / "src"), tok, hidden=32)
    rng = np.random.default_rng(0)
    val = rng.integers(0, 40, (3, 16))
    save_packed(str(tmp_path / "mix.npz"), {"train": rng.integers(0, 40, (4, 16)), "validation_x": val}, len(tok))
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS="1")
    cmd = [sys.executable, os.path.join(ROOT, "recipes", "distill_text.py"), "--source", str(tmp_path / "src"),
           "--rows", "6", "--batch_size", "4", "--device", "cpu", "--merge_with", str(tmp_path / "mix.npz"),
           "--out", str(tmp_path / "out.npz")]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    with np.load(tmp_path / "out.npz") as z:
        assert z["train"].shape == (10, 16) and np.array_equal(z["validation_x"], val)
    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 2 and "exists" in again.stderr and again.stderr.strip().count("\n") == 0
    save_packed(str(tmp_path / "bad.npz"), {"validation_x": val}, len(tok))
    bad = subprocess.run(cmd[:-4] + ["--merge_with", str(tmp_path / "bad.npz"), "--out", str(tmp_path / "o2.npz")],
                         env=env, capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "no 'train' split" in bad.stderr and bad.stderr.strip().count("\n") == 0
