"""Content metrics of SFT answers (mdlm.evaluation.sft_content) and the WordNet references they use
(mdlm.data.wordnet_refs): what counts as naming a definition's head word or a synonym, and what does not."""

from __future__ import annotations

import math
import os

import pytest

from mdlm.data.wordnet_refs import base_forms, gloss_head, lexicon_of, word_refs
from mdlm.evaluation.sft_content import (
    content_scores,
    definition_hit,
    normalise_answer,
    pick_rows,
    side_by_side_markdown,
    synonym_exact,
)

LEX = {"n": frozenset({"body", "water", "large", "person", "act", "dog", "sea", "ocean", "hydrosphere", "salt"}),
       "v": frozenset({"move", "run", "water"}),
       "a": frozenset({"large", "salt", "quick", "fast"}),
       "r": frozenset({"quickly", "fast"})}

# two synsets in WordNet's data-file layout: ocean (hypernym: body of water), and body of water
SYNSETS = {
    (1, "n"): ("n", ["ocean", "sea"], [(2, "n")], "a large body of water constituting a principal part of the hydrosphere"),
    (2, "n"): ("n", ["body of water", "water"], [], "the part of the earth's surface covered with water"),
    (3, "v"): ("v", ["run", "go"], [], "move fast by using one's feet"),
}


def test_gloss_head_skips_stopwords_and_modifiers_and_reduces_inflections():
    assert gloss_head("a large body of water", "n", LEX) == "body"  # 'large' is also an adjective: a modifier
    assert gloss_head("the persons who run", "n", LEX) == "person"  # plural → base form
    assert gloss_head("move quickly", "v", LEX) == "move"
    assert gloss_head("quick", "a", LEX) == "quick"  # adjective synsets may be headed by an adjective
    assert gloss_head("of or relating to", "n", LEX) is None
    assert base_forms("bodies")[:4] == ["bodies", "body", "bodi", "bodie"]


def test_word_refs_collect_heads_synset_and_hypernym_lemmas_without_the_word():
    refs = word_refs(["ocean", "run"], SYNSETS, LEX)
    assert refs["ocean"] == {"heads": ["body"], "synset_lemmas": ["sea"], "hypernym_lemmas": ["body of water", "water"]}
    assert refs["run"]["synset_lemmas"] == ["go"] and refs["run"]["heads"] == ["move"]
    assert lexicon_of(SYNSETS)["n"] == frozenset({"ocean", "sea", "body of water", "water"})


def test_definition_hit_needs_a_head_or_synonym_and_ignores_the_word_itself():
    ref = word_refs(["ocean"], SYNSETS, LEX)["ocean"]
    assert definition_hit("A vast body of salty water.", "ocean", ref) == "body"
    assert definition_hit("The seas of the world.", "ocean", ref) == "sea"  # an inflection counts
    assert definition_hit("An ocean is an ocean of oceans.", "ocean", ref) is None  # repeating the word is no content
    assert definition_hit("A day of a day.", "ocean", ref) is None  # right form, no content
    assert definition_hit("somebody", "ocean", ref) is None  # whole words only


def test_synonym_exact_match_is_normalised_but_strict():
    ref = {"synset_lemmas": ["body of water", "sea"]}
    assert synonym_exact(" Sea.", ref) and synonym_exact('"Body of_water"', ref)
    assert not synonym_exact("the sea", ref) and not synonym_exact("seas", ref) and not synonym_exact("", ref)
    assert normalise_answer("Sea!\nmore text") == "sea"


def test_content_scores_count_only_scored_rows():
    refs = {"ocean": {"heads": ["body"], "synset_lemmas": ["sea"], "hypernym_lemmas": []}}
    rows = [{"task": "define", "word": "ocean"}, {"task": "synonym", "word": "ocean"},
            {"task": "synonym", "word": "ocean"}, {"task": "define", "word": "zebra"}, {"task": "about", "word": "x"}]
    s = content_scores(rows, ["A body of water", "sea", "lake", "a horse", "?"], refs)
    assert s["define"] == {"share": 1.0, "hits": 1, "n": 1}
    assert s["synonym"]["hits"] == 1 and s["synonym"]["n"] == 2 and s["synonym"]["share"] == 0.5
    assert s["per_row"] == ["body", True, False, None, None]
    assert math.isnan(content_scores([], [], refs)["define"]["share"])


def test_pick_rows_is_fixed_one_per_prompt_and_the_table_shows_every_kind():
    refs = {f"w{i}": {"synset_lemmas": ["x"]} for i in range(10)}
    rows = ([{"prompt": f"Define w{i}.", "source": "wordnet", "task": "define", "word": f"w{i}", "response": "r"}
             for i in range(10)] * 2
            + [{"prompt": f"Give a synonym of w{i}.", "source": "wordnet", "task": "synonym", "word": f"w{i}",
                "response": "x"} for i in range(10)]
            + [{"prompt": f"Tell me about T{i}.", "source": "wiki", "task": "about", "word": f"t{i}", "response": "t"}
               for i in range(6)])
    a, b = pick_rows(rows, refs, 3, seed=1), pick_rows(list(reversed(rows)), refs, 3, seed=1)
    assert [r["prompt"] for r in a] == [r["prompt"] for r in b]  # order of the file does not matter
    assert [r["task"] for r in a] == ["define"] * 3 + ["synonym"] * 3 + ["about"] * 4
    md = side_by_side_markdown(a, {"tuned": ["x"] * len(a)}, {"tuned": [True] * 6 + [None] * 4}, limit=3)
    assert md.count("\n") == 2 + 3 and "✓" in md and "Tell me about" in md


@pytest.mark.slow
@pytest.mark.slow
@pytest.mark.skipif(not os.path.isfile("/usr/share/wordnet/data.noun"), reason="needs Debian wordnet-base (apt-get install -y wordnet-base)")
def test_real_wordnet_ocean():
    from mdlm.data.wordnet_refs import load_synsets

    syn = load_synsets()
    ref = word_refs(["ocean"], syn, lexicon_of(syn))["ocean"]
    assert "body" in ref["heads"] and "sea" in ref["synset_lemmas"] and "body of water" in ref["hypernym_lemmas"]
