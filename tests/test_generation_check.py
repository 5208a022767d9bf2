"""Measured generation defaults (mdlm/training/generation_check.py): a checkpoint whose greedy decoding
is blank lines is saved with a sampling setting that gives text, and says so."""

from __future__ import annotations

import torch

from mdlm.tokenizers.text import train_bpe
from mdlm.training import generation_check as gc

CORPUS = ["the quick brown fox jumps over the lazy dog", "to be or not to be, that is the question"] * 20


class NewlineLover(torch.nn.Module):
    """Logits: flat, plus ``bonus`` on the newline token — greedy always picks "\\n", sampling rarely."""

    def __init__(self, vocab: int, newline: int, bonus: float):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))
        self.config = type("C", (), {"max_position_embeddings": 96})()
        self.vocab, self.newline, self.bonus = vocab, newline, bonus

    def forward(self, input_ids, attention_mask=None):
        logits = torch.zeros(*input_ids.shape, self.vocab) + self.w
        logits[..., self.newline] += self.bonus
        return logits


def _setup(bonus: float):
    tok = train_bpe(CORPUS, vocab_size=300)
    newline = tok.convert_tokens_to_ids(tok.tokenize("\n"))[0]
    defaults = {"mask_token_id": tok.mask_token_id, "eos_token_id": tok.eos_token_id, "pad_token_id": tok.pad_token_id,
                "steps": 16, "gen_length": 32, "block_length": 16, "temperature": 0.0,
                "remasking": "low_confidence", "confidence": "prob", "schedule": "even"}
    return NewlineLover(len(tok), newline, bonus), tok, defaults


def test_is_degenerate():
    assert gc.is_degenerate("\n\n \n")
    assert gc.is_degenerate(". . .\n.")
    assert gc.is_degenerate("the the\nthe")
    assert gc.is_degenerate("\n\n:\n\n.\n\nAnd\n,\n:\n,,")  # a real quickstart output at T 0.8
    assert not gc.is_degenerate("Shall I compare thee")


def test_degenerate_greedy_is_replaced_by_a_measured_sampling_setting(capsys):
    model, tok, defaults = _setup(bonus=3.0)
    assert gc.degenerate_count(model, tok, defaults, gc.DEFAULT_PROMPTS, seed=0) == len(gc.DEFAULT_PROMPTS)
    chosen = gc.checked_generation_defaults(model, tok, defaults)
    assert chosen["temperature"] > 0 and chosen != defaults
    assert gc.degenerate_count(model, tok, chosen, gc.DEFAULT_PROMPTS, seed=0) == 0
    out = capsys.readouterr().out
    assert "degenerate" in out and "saved temperature" in out and defaults["temperature"] == 0.0  # input untouched


def test_good_greedy_is_kept(capsys, monkeypatch):
    model, tok, defaults = _setup(bonus=0.0)
    monkeypatch.setattr(gc, "degenerate_count", lambda *a, **k: 0)
    assert gc.checked_generation_defaults(model, tok, defaults) is defaults
    assert "greedy, confidence order (degenerate on 0/3" in capsys.readouterr().out


def test_least_degenerate_fallback_when_none_is_good(monkeypatch):
    model, tok, defaults = _setup(bonus=0.0)
    counts = {0.0: 3, 0.8: 2, 1.0: 3}  # greedy, T 0.8, ancestral
    monkeypatch.setattr(gc, "degenerate_count", lambda m, t, d, *a: counts[d["temperature"]])
    assert gc.checked_generation_defaults(model, tok, defaults)["temperature"] == 0.8


def test_chat_answers_that_start_with_eos_get_a_setting_that_answers(capsys):
    """SFT with EOS padding teaches a weak model to put EOS everywhere: greedy chat answers are empty."""
    model, tok, defaults = _setup(bonus=3.0)
    model.newline, model.bonus = tok.eos_token_id, 1.0  # now the favourite token is EOS (greedy: always)
    prompts = ("Define ocean.", "Give a synonym of big.")
    assert gc.degenerate_count(model, tok, defaults, prompts, 0, chat=True, min_distinct_words=1) == 2
    chosen = gc.checked_generation_defaults(model, tok, defaults, prompts=prompts, chat=True, min_distinct_words=1)
    assert chosen["temperature"] > 0
    assert gc.degenerate_count(model, tok, chosen, prompts, 0, chat=True, min_distinct_words=1) == 0


def test_greedy_overrides_a_stored_random_order_and_the_log_names_what_is_saved():
    from mdlm.pipelines.text import sampler_config_from

    stored = {"temperature": 1.0, "confidence": "random", "max_new_tokens": 16}  # what a re-checked checkpoint holds
    # the README's way back to greedy: the old key asks for a confidence order and beats the stored random one
    greedy, _ = sampler_config_from(stored, {"temperature": 0.0, "remasking": "low_confidence"})
    assert (greedy.temperature, greedy.confidence) == (0.0, "prob")
    margin, _ = sampler_config_from({**stored, "confidence": "margin"}, {"remasking": "low_confidence"})
    assert margin.confidence == "margin"  # another confidence rule is kept
    assert gc.describe(stored) == "temperature 1, random order"
    assert gc.describe({**stored, "temperature": 0.8, "remasking": "low_confidence"}) == "temperature 0.8, confidence order"
