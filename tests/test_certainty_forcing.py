"""Certainty-forcing distillation (mdlm/certainty_forcing, recipes/distill_parallel.py): the semi-AR mask is the
decoder's view of a block, the loss of a perfect predictor is 0, trajectories are the sampler's own greedy decodes
(padded batch == one by one), and distilling a tiny model on its trajectories makes a threshold decoder commit in
parallel on held-out prompts (fewer forwards, nearly the tokens of one-by-one decoding)."""

import json
import os
import subprocess
import sys

import pytest
import torch

from mdlm.certainty_forcing import certainty_forcing_loss, semi_ar_mask
from mdlm.certainty_forcing.collator import TrajectoryCollator
from mdlm.certainty_forcing.prompts import paragraph_openings
from mdlm.certainty_forcing.teacher import (degenerate_share, student_generation_defaults, teacher_config,
                                            teacher_trajectories)
from mdlm.pipelines import load_for_generation
from mdlm.pipelines.text import build_text_canvas
from mdlm.sampling import MDLMGenerationConfig, generate

from demo_fixtures import tiny_text_checkpoint

pytestmark = pytest.mark.usefixtures("one_thread")
ROOT = os.path.join(os.path.dirname(__file__), "..")


@pytest.fixture(scope="module")
def ck(tmp_path_factory):
    """A random 2-layer text MDM with its BPE (tests/demo_fixtures.py)."""
    return str(tiny_text_checkpoint(tmp_path_factory.mktemp("cf") / "ck", context=64))


def _response(lengths: list[int], L: int) -> torch.Tensor:
    """(B, L) bool: each row's last ``n`` positions are its response (the sampler's layout)."""
    r = torch.zeros(len(lengths), L, dtype=torch.bool)
    for i, n in enumerate(lengths):
        r[i, L - n:] = True
    return r


def test_semi_ar_mask_is_the_decoders_view_of_one_block():
    B, L, b = 256, 40, 8
    resp = _response([32, 30, 8, 5] * (B // 4), L)  # full blocks, a partial last block, one block, a short one
    g = torch.Generator().manual_seed(0)
    m = semi_ar_mask(resp, b, torch.rand(B, generator=g), generator=g)
    offset = resp.long().cumsum(1) - 1
    blk = torch.div(offset, b, rounding_mode="floor")
    k = m.block[:, None]
    assert not (m.masked & ~resp).any()  # the prompt is never masked
    assert not (m.masked & resp & (blk < k)).any()  # blocks before the active one are clean
    assert (m.masked[resp & (blk > k)]).all()  # every later position is [MASK] ...
    assert not (m.scored & (blk != k)).any()  # ... and only the active block is scored
    assert (m.scored <= m.masked).all() and (m.scored.sum(1) >= 1).all()
    n_blocks = (resp.sum(1) + b - 1) // b
    assert ((m.block >= 0) & (m.block < n_blocks)).all()
    assert set(m.block[0::4].tolist()) == set(range(4))  # every block of a 4-block row gets drawn


def test_semi_ar_mask_rate_in_the_active_block_is_t():
    B, L, b = 4000, 64, 32
    resp = _response([64] * B, L)
    g = torch.Generator().manual_seed(1)
    m = semi_ar_mask(resp, b, torch.full((B,), 0.3), generator=g)
    active = resp & (torch.div(resp.long().cumsum(1) - 1, b, rounding_mode="floor") == m.block[:, None])
    rate = (m.scored.sum() / active.sum()).item()
    assert abs(rate - (0.3 + 0.7 / b)) < 0.01  # t, plus the one position always masked


def test_semi_ar_mask_refuses_rows_without_a_response_and_bad_blocks():
    with pytest.raises(ValueError, match="response position"):
        semi_ar_mask(_response([4, 0], 8), 4, torch.full((2,), 0.5))
    with pytest.raises(ValueError, match="block_length"):
        semi_ar_mask(_response([4], 8), 0, torch.full((1,), 0.5))


def test_certainty_loss_of_a_perfect_predictor_is_zero_and_entropy_counts_only_correct_positions():
    y = torch.tensor([3, 1, 4, 1, 5])
    perfect = torch.full((5, 8), -1e4).scatter(1, y[:, None], 1e4)
    out = certainty_forcing_loss(perfect, y, entropy_weight=1.0, temperature=0.5)
    assert out.loss.item() == pytest.approx(0.0, abs=1e-6) and out.accuracy.item() == 1.0
    wrong = torch.randn(5, 8).scatter(1, y[:, None], -50.0)  # argmax never the target
    out = certainty_forcing_loss(wrong, y, entropy_weight=3.0)
    assert out.accuracy.item() == 0.0 and out.entropy.item() == 0.0
    assert out.loss.item() == pytest.approx(torch.nn.functional.cross_entropy(wrong, y).item(), rel=1e-6)
    logits = torch.randn(5, 8)
    half = certainty_forcing_loss(logits, logits.argmax(-1), entropy_weight=0.5)
    assert half.loss.item() == pytest.approx(half.cross_entropy.item() + 0.5 * half.entropy.item(), rel=1e-6)
    for bad in ({"temperature": 0.0}, {"entropy_weight": -1.0}):
        with pytest.raises(ValueError):
            certainty_forcing_loss(logits, y, **bad)


def test_paragraph_openings_are_speech_openings_cut_at_a_word():
    text = ("[Enter ROMEO]\n\nROMEO:\nBut soft, what light through yonder window breaks? It is the east\nand more\n\n"
            "In the beginning God created the heaven and the earth.\n\nHA:\nNo.")
    got = paragraph_openings([text], max_chars=40, min_chars=5)
    assert got == ["ROMEO:\nBut soft, what light through yonder", "In the beginning God created the heaven"]


def test_degenerate_teachers_are_named_and_the_student_decodes_greedily_with_a_threshold():
    assert degenerate_share([[5] * 8, [5, 6] * 4, [1, 2, 3, 4]]) == pytest.approx(2 / 3)
    with pytest.raises(ValueError):
        degenerate_share([])
    base = {"max_new_tokens": 64, "temperature": 1.0, "confidence": "random", "mask_token_id": 3}
    d = student_generation_defaults(base, 32)
    cfg = MDLMGenerationConfig.from_dict(d)  # a valid sampler config
    assert (cfg.temperature, cfg.confidence, cfg.unmasking, cfg.threshold) == (0.0, "prob", "fast_dllm", 0.9)
    assert cfg.steps == cfg.max_new_tokens == 64 and cfg.block_length == 32 and d["mask_token_id"] == 3


def test_trajectory_batch_is_the_samplers_canvas(ck):
    """The collator lays out (prompt, response) exactly where build_text_canvas puts prompt and [MASK]s."""
    tok = load_for_generation(ck).tokenizer
    prompts = ["the quick brown fox", "a word"]
    canvas, attn, pm = build_text_canvas(tok, prompts, 6, None)
    feats = [{"prompt_ids": canvas[i][pm[i]].tolist(), "response_ids": list(range(10, 16))} for i in range(2)]
    batch = TrajectoryCollator(tok.pad_token_id)(feats)
    assert torch.equal(batch["attention_mask"], attn)
    assert torch.equal(batch["response"], canvas == tok.mask_token_id)
    assert torch.equal(batch["input_ids"][pm], canvas[pm])


def test_teacher_trajectories_padded_batch_equals_one_by_one(ck):
    loaded = load_for_generation(ck)
    model, tok = loaded.model, loaded.tokenizer
    prompts = ["the quick brown fox jumps", "a word", "to be or not"]
    cfg = teacher_config(16, 8)
    together = list(teacher_trajectories(model, tok, prompts, cfg, batch_size=3, progress=False))
    alone = [r for p in prompts for r in teacher_trajectories(model, tok, [p], cfg, batch_size=1, progress=False)]
    assert [r["response_ids"] for r in together] == [r["response_ids"] for r in alone]
    assert [len(r["response_ids"]) for r in together] == [16] * 3
    assert together[1]["prompt_ids"] == tok("a word", add_special_tokens=False)["input_ids"]


def _decode(model_dir: str, prompts: list[str], G: int, b: int, threshold: float | None):
    """(generated tokens (B, G), NFE): greedy, one token per step, or Fast-dLLM's rule at ``threshold``."""
    loaded = load_for_generation(model_dir)
    model, tok = loaded.model, loaded.tokenizer
    canvas, attn, pm = build_text_canvas(tok, prompts, G, None)
    rule = {"unmasking": "fast_dllm", "threshold": threshold} if threshold else {}
    cfg = MDLMGenerationConfig(max_new_tokens=G, steps=G, block_length=b, temperature=0.0, schedule="even",
                               stop_at_eos=False, suppress_pad=False, **rule)
    with torch.inference_mode():
        out = generate(model, canvas, mask_id=tok.mask_token_id, config=cfg, attention_mask=attn, cond_mask=pm,
                       suppress_tokens=[tok.pad_token_id], vocab_size=len(tok))
    return out.sequences[:, -G:], out.nfe


def test_distilling_a_tiny_model_makes_threshold_decoding_commit_in_parallel(ck, tmp_path):
    """End to end through the recipe: teacher → train → the distilled model decodes held-out prompts with a 0.9
    threshold in fewer forwards than its source, and the held-out share of confident correct positions rises."""
    src = ck
    corpus = tmp_path / "corpus.txt"
    words = "the quick brown fox jumps over the lazy dog a word a sense to be or not all the world".split()
    paras = [" ".join(words[(i * 3) % 11:(i * 3) % 11 + 6]) + f" {i}" for i in range(120)]
    corpus.write_text("\n\n".join(paras), encoding="utf-8")
    G, b = 16, 8
    traj, out = tmp_path / "traj", tmp_path / "cf"
    env = {**os.environ, "PYTHONPATH": ROOT}
    run = [sys.executable, os.path.join(ROOT, "recipes", "distill_parallel.py")]
    p = subprocess.run(run + ["teacher", "--model", src, "--dataset", str(corpus), "--num_prompts", "96",
                              "--gen_length", str(G), "--block_length", str(b), "--batch_size", "32",
                              "--out", str(traj)], capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stderr[-2000:]
    meta = json.loads((traj / "teacher.json").read_text())
    assert meta["rows"] == 96 and 0.0 <= meta["degenerate_share"] <= 1.0
    p = subprocess.run(run + ["train", "--config", os.path.join(ROOT, "recipes/configs/distill_parallel_tiny.yaml"),
                              "--base_model", src, "--trajectories", str(traj), "--output_dir", str(out),
                              "--max_steps", "60", "--learning_rate", "0.003", "--disable_tqdm", "true"],
                       capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stderr[-2000:]
    saved = json.loads((out / "generation_config.json").read_text())
    assert (saved["unmasking"], saved["threshold"], saved["temperature"]) == ("fast_dllm", 0.9, 0.0)
    metrics = json.loads((out / "eval_metrics.json").read_text())
    assert metrics["eval_confident_correct"] > metrics["before_confident_correct"] + 0.3
    held_out = ["over the lazy", "not all the world", "a sense to"]
    _, src_nfe = _decode(src, held_out, G, b, 0.9)
    cf_seq, cf_nfe = _decode(str(out), held_out, G, b, 0.9)
    assert src_nfe == G and cf_nfe <= 0.75 * G  # the source commits one token a step, the distilled one in parallel
    one_by_one, _ = _decode(str(out), held_out, G, b, None)
    assert (cf_seq == one_by_one).float().mean().item() >= 0.9  # ... to (nearly) the tokens it decodes one by one


def test_distill_recipe_refuses_bad_input_with_one_line(ck, tmp_path):
    run = [sys.executable, os.path.join(ROOT, "recipes", "distill_parallel.py")]
    env = {**os.environ, "PYTHONPATH": ROOT}
    cases = [(["nonsense"], "usage"),
             (["train", "--base_model", ck, "--trajectories", str(tmp_path),
               "--output_dir", str(tmp_path / "o")], "not a dir written by"),
             (["teacher", "--model", ck, "--gen_length", "20", "--block_length", "8",
               "--out", str(tmp_path / "t")], "multiple of")]
    for args, msg in cases:
        p = subprocess.run(run + args, capture_output=True, text=True, env=env)
        lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
        assert p.returncode == 2 and msg in lines[-1] and lines[-1].startswith("error:"), p.stderr[-1500:]
    assert not (tmp_path / "o").exists() and not (tmp_path / "t").exists()
