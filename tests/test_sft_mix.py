"""The instruction mix of SFT (mdlm.data.sft_mix, mdlm.data.instructions): one held-out split by entry over all
sources, per-source counts, the GCIDE / wiki / chatterbot pair builders, and a write that never half-replaces."""

from __future__ import annotations

import json

import pytest

from mdlm.data.instructions import (
    chatterbot_pairs,
    first_sentences,
    gcide_definition,
    gcide_pairs,
    wiki_pairs,
)
from mdlm.data.sft_mix import build_mix, mix_counts, split_by_entry, write_mix
from mdlm.data.wordnet import is_held_out


def test_gcide_definition_takes_the_first_sense_and_drops_markup_and_cross_references():
    e = 'Ocean \\O"cean\\ (o"shan), n. [F. oc\'ean.] 1. The whole body of salt water; the sea. --Milton.'
    assert gcide_definition(e) == ("Ocean", "The whole body of salt water.")
    assert gcide_definition("Skirl \\Skirl\\, v. t. (Scot.) To utter in a shrill tone.") == ("Skirl", "To utter in a shrill tone.")
    assert gcide_definition("Cat \\Cat\\, n. See Kat.") is None  # a cross reference
    assert gcide_definition("Ran \\Ran\\, imp. of Run.") is None  # an inflection, not a definition
    assert gcide_definition("no headword here") is None
    pairs = list(gcide_pairs([("ocean", e), ("ocean", "Ocean \\O\"cean\\, a. Of the sea, and its waves.")]))
    assert pairs == [{"prompt": "Define ocean.", "response": "The whole body of salt water.", "source": "gcide",
                      "task": "define", "word": "ocean"}]  # one pair per headword


def test_wiki_answers_are_whole_first_sentences_within_the_word_limit():
    text = "Paris is the capital of France. It has 2 million people. " + "Word " * 80 + "end."
    assert first_sentences(text, 12) == "Paris is the capital of France. It has 2 million people."
    assert first_sentences("One two three four five six.", 3) == "One two three"
    (pair,) = wiki_pairs([("Paris", text)], max_words=12)
    assert pair["prompt"] == "Tell me about Paris." and pair["word"] == "paris" and pair["task"] == "about"


def test_chatterbot_pairs_follow_turns_and_keep_a_conversation_under_one_key(tmp_path):
    (tmp_path / "a.yml").write_text("categories: [x]\nconversations:\n- - hello there\n  - hi!\n  - how are you\n"
                                    "- - what is ai\n  - artificial intelligence.\n", encoding="utf-8")
    pairs = list(chatterbot_pairs(tmp_path))
    assert [(p["prompt"], p["response"]) for p in pairs] == [
        ("Hello there", "Hi!"), ("Hi!", "How are you"), ("What is ai", "Artificial intelligence.")]
    assert {p["word"] for p in pairs[:2]} == {"hello there"}


def _rows(source, n, prefix):
    return [{"prompt": f"Define {prefix}{i}.", "response": "r", "source": source, "task": "define",
             "word": f"{prefix}{i}"} for i in range(n)]


def test_one_entry_split_over_all_sources_and_per_source_counts():
    shared = [f"w{i}" for i in range(400)]  # the same words in two sources
    loaders = {"wordnet": lambda: _rows("wordnet", 400, "w") * 2, "gcide": lambda: _rows("gcide", 400, "w"),
               "wiki": lambda: _rows("wiki", 50, "t")}
    mix = build_mix({"wordnet": 100, "gcide": None, "wiki": 10}, heldout_fraction=0.1, seed=0, loaders=loaders)
    train_keys = {r["word"] for r in mix["train"]}
    held_keys = {r["word"] for r in mix["heldout"]}
    assert held_keys and not train_keys & held_keys  # a word is never in both, whatever the source
    assert held_keys == {w for w in shared if is_held_out(w, 0.1)} | {r["word"] for r in mix["heldout"] if r["source"] == "wiki"}
    c = mix_counts(mix)["train"]
    assert c["wordnet"] == 100 and c["wiki"] == 10 and c["gcide"] == sum(not is_held_out(w, 0.1) for w in shared)
    again = build_mix({"wordnet": 100, "gcide": None, "wiki": 10}, heldout_fraction=0.1, seed=0, loaders=loaders)
    assert again == mix  # fixed
    tr, he = split_by_entry([{"prompt": "p", "response": "r", "word": "Ocean"}], 1.0)
    assert tr == [] and he[0]["word"] == "Ocean"


def test_write_mix_writes_every_file_and_refuses_a_non_empty_dir(tmp_path):
    mix = {"train": _rows("gcide", 3, "a"), "heldout": _rows("gcide", 1, "b"), "heldout_eval": _rows("gcide", 1, "b")}
    paths = write_mix(str(tmp_path / "m"), mix, {"b0": {"heads": []}}, {"seed": 0})
    assert sorted(paths) == ["content_refs.json", "heldout.jsonl", "heldout_eval.jsonl", "mix.json", "train.jsonl"]
    assert json.loads((tmp_path / "m" / "mix.json").read_text())["counts"]["train"] == {"gcide": 3}
    assert len((tmp_path / "m" / "train.jsonl").read_text().splitlines()) == 3
    with pytest.raises(ValueError, match="not empty"):
        write_mix(str(tmp_path / "m"), mix, {}, {})
