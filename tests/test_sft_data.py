"""SFT formatting (mdlm.data.sft) and the WordNet instruction set (mdlm.data.wordnet)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from datasets import Dataset
from tokenizers import ByteLevelBPETokenizer
from transformers import PreTrainedTokenizerFast

from mdlm.data import sft, wordnet

CORPUS = [
    "The cat sat on the mat. The dog barked at the cat.",
    "Define a word, give a synonym, or use it in a sentence.",
    "A dog is a domesticated canine; dogs are loyal animals.",
]


def _tokenizer() -> PreTrainedTokenizerFast:
    core = ByteLevelBPETokenizer()
    specials = ["<eos>", "<pad>", "<mask>"]
    core.train_from_iterator(CORPUS * 4, vocab_size=320, special_tokens=specials, show_progress=False)
    return PreTrainedTokenizerFast(
        tokenizer_object=core._tokenizer, eos_token="<eos>", pad_token="<pad>", mask_token="<mask>"
    )


@pytest.fixture(scope="module")
def tok() -> PreTrainedTokenizerFast:
    return _tokenizer()


def _ids(tok, text: str) -> list[int]:
    return tok(text, add_special_tokens=False)["input_ids"]


# --------------------------------------------------------------------------------------- masks
@pytest.mark.parametrize("pad_policy", ["eos", "mask"])
def test_masks_cover_prompt_and_response(tok, pad_policy):
    prompt, response = "Define dog.", "a domesticated canine"
    msgs = sft.to_messages(prompt, response)
    f = sft.encode_sft_example(tok, msgs, max_length=64, pad_policy=pad_policy)
    p_ids = _ids(tok, sft.render_prompt(tok, msgs[:-1]))
    r_ids = _ids(tok, response)
    n_p, n_r = len(p_ids), len(r_ids)
    ids, pm, attn = f["input_ids"], f["prompt_mask"], f["attention_mask"]
    assert len(ids) == len(pm) == len(attn) == 64
    assert pm == [True] * n_p + [False] * (64 - n_p)
    assert ids[:n_p] == p_ids and ids[n_p : n_p + n_r] == r_ids and ids[n_p + n_r] == tok.eos_token_id
    # round trip: prompt and response decode back to their text
    assert tok.decode(ids[:n_p]) == "<|user|>\nDefine dog.\n<|assistant|>\n"
    assert tok.decode(ids[n_p : n_p + n_r]) == response
    pad = ids[n_p + n_r + 1 :]
    loss_region = [a == 1 and not p for a, p in zip(attn, pm)]
    if pad_policy == "eos":
        assert pad == [tok.eos_token_id] * len(pad) and all(attn)
        assert sum(loss_region) == 64 - n_p  # response + EOS + EOS padding
    else:
        assert pad == [tok.pad_token_id] * len(pad) and attn == [1] * (n_p + n_r + 1) + [0] * len(pad)
        assert sum(loss_region) == n_r + 1  # response + one EOS
    assert f["length"] == sum(attn) and f["prompt_length"] == n_p
    batch = sft.SFTCollator.from_tokenizer(tok, pad_policy=pad_policy)([f])
    assert batch["eligible"][0].tolist() == loss_region
    assert batch["prompt_mask"].dtype == torch.bool and batch["input_ids"].dtype == torch.long


@pytest.mark.parametrize("pad_policy", ["eos", "mask"])
def test_collator_pads_batch_like_max_length(tok, pad_policy):
    pairs = [("Define cat.", "a small feline"), ("Use dog in a sentence.", "The dog barked at the cat all night.")]
    ds = Dataset.from_dict({"prompt": [p for p, _ in pairs], "response": [r for _, r in pairs]})
    loose = sft.tokenize_sft_dataset(ds, tok, max_length=48, pad_policy=pad_policy, padding="longest")
    fixed = sft.tokenize_sft_dataset(ds, tok, max_length=48, pad_policy=pad_policy, padding="max_length")
    assert len(loose[0]["input_ids"]) != len(loose[1]["input_ids"])
    coll = sft.SFTCollator.from_tokenizer(tok, pad_policy=pad_policy)
    b_loose = coll([loose[i] for i in range(2)])
    b_fixed = coll([fixed[i] for i in range(2)])
    L = b_loose["input_ids"].shape[1]
    assert L == max(len(x) for x in loose["input_ids"])
    for k in b_loose:  # batch padding == per-example max_length padding, cut to the batch length
        assert torch.equal(b_loose[k], b_fixed[k][:, :L]), k
    coll16 = sft.SFTCollator.from_tokenizer(tok, pad_policy, pad_to_multiple_of=16)
    assert coll16(list(loose))["input_ids"].shape[1] % 16 == 0


def test_response_canvas_is_the_decoders_canvas_filled_with_eos(tok):
    """response_length=R: every row is prompt + exactly R response positions (answer, then EOS), the canvas a
    decoder with gen_length=R fills; shorter prompts' extra columns are not attended; a cut answer gets no EOS."""
    pairs = [("Define cat.", "a small feline"), ("Use dog in a sentence.", "The dog barked at the cat all night."),
             ("Define mat.", "The cat sat on the mat. The dog barked at the cat. " * 3)]
    ds = Dataset.from_dict({"prompt": [p for p, _ in pairs], "response": [r for _, r in pairs]})
    feats = list(sft.tokenize_sft_dataset(ds, tok, max_length=64, pad_policy="eos", padding="longest"))
    R = 24
    b = sft.SFTCollator.from_tokenizer(tok, "eos", response_length=R)(feats)
    n_prompt = [f["prompt_length"] for f in feats]
    assert b["input_ids"].shape[1] == max(n_prompt) + R
    eos = tok.eos_token_id
    for i, (f, p) in enumerate(zip(feats, n_prompt)):
        ids, attn, elig = b["input_ids"][i], b["attention_mask"][i], b["eligible"][i]
        assert attn[: p + R].all() or i == 2, i  # the whole canvas is attended (row 2: cut, below)
        assert not attn[p + R :].any()  # past the row's own canvas: never attended
        assert int(elig.sum()) == int(attn.sum()) - p  # the loss region = the response canvas
        n_real = len(f["input_ids"])
        if i < 2:  # answers that end: the tokens, then EOS up to the canvas end
            assert ids[:n_real].tolist() == f["input_ids"] and f["input_ids"][-1] == eos
            assert (ids[n_real : p + R] == eos).all() and int(attn.sum()) == p + R
    # row 2's answer is longer than R: cut to the canvas, no EOS taught mid-answer
    cut = b["input_ids"][2, : n_prompt[2] + R].tolist()
    assert cut == feats[2]["input_ids"][: n_prompt[2] + R] and eos not in cut[n_prompt[2] :]
    assert int(b["attention_mask"][2].sum()) == n_prompt[2] + R
    with pytest.raises(ValueError, match="pad_policy='eos'"):
        sft.SFTCollator.from_tokenizer(tok, "mask", response_length=R)
    with pytest.raises(ValueError, match="at least 1"):
        sft.SFTCollator.from_tokenizer(tok, "eos", response_length=0)


def test_chat_template_is_used_when_present(tok):
    msgs = sft.to_messages("Give a synonym of dog.", "domestic dog", system="Be brief.")
    plain = sft.encode_sft_example(tok, msgs, max_length=64)
    tok2 = _tokenizer()
    tok2.chat_template = sft.PLAIN_CHAT_TEMPLATE  # same rendering through apply_chat_template
    assert sft.render_prompt(tok2, msgs[:-1]) == sft.render_prompt(tok, msgs[:-1])
    assert sft.encode_sft_example(tok2, msgs, max_length=64) == plain
    tok2.chat_template = "{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }} {% endfor %}[assistant] "
    assert sft.render_prompt(tok2, msgs[:-1]) == "[system] Be brief. [user] Give a synonym of dog. [assistant] "


# --------------------------------------------------------------------------------- truncation
def test_too_long_prompt_raises_or_keeps_tail(tok):
    msgs = sft.to_messages("the cat sat on the mat " * 20, "a cat")
    n_prompt = len(_ids(tok, sft.render_prompt(tok, msgs[:-1])))
    with pytest.raises(ValueError, match=rf"prompt is {n_prompt} tokens but max_length is 32"):
        sft.encode_sft_example(tok, msgs, max_length=32)
    f = sft.encode_sft_example(tok, msgs, max_length=32, truncate_prompt="left")
    n_resp = len(_ids(tok, "a cat")) + 1
    assert sum(f["prompt_mask"]) == 32 - n_resp
    assert f["input_ids"][: 32 - n_resp] == _ids(tok, sft.render_prompt(tok, msgs[:-1]))[-(32 - n_resp) :]
    assert f["input_ids"][-1] == tok.eos_token_id


def test_long_response_is_cut_without_eos(tok):
    msgs = sft.to_messages("Define cat.", "the cat sat on the mat " * 20)
    f = sft.encode_sft_example(tok, msgs, max_length=40)
    assert len(f["input_ids"]) == 40 and tok.eos_token_id not in f["input_ids"]
    assert sum(not p for p in f["prompt_mask"]) == 40 - f["prompt_length"]


# -------------------------------------------------------------------------------------- JSONL
def test_jsonl_formats_load_and_tokenize(tok, tmp_path):
    pr = tmp_path / "pr.jsonl"
    pr.write_text(
        '{"prompt": "Define cat.", "response": "a small feline"}\n\n'
        '{"prompt": "Define dog.", "response": "a canine"}\n'
    )
    conv = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Define cat."},
        {"role": "assistant", "content": "a small feline"},
        {"role": "user", "content": "Use it in a sentence."},
        {"role": "assistant", "content": "The cat sat on the mat."},
    ]
    ms = tmp_path / "ms.jsonl"
    ms.write_text(json.dumps({"messages": conv}) + "\n")
    cache = str(tmp_path / "cache")
    ds = sft.load_sft_jsonl(pr, cache_dir=cache)
    assert ds.num_rows == 2 and set(ds.column_names) == {"prompt", "response"}
    out = sft.tokenize_sft_dataset(ds, tok, max_length=32)
    assert set(out.column_names) == {"input_ids", "attention_mask", "prompt_mask", "length", "prompt_length"}
    m = sft.tokenize_sft_dataset(sft.load_sft_jsonl([ms], cache_dir=cache), tok, max_length=160)[0]
    n_p = m["prompt_length"]
    assert tok.decode(m["input_ids"][:n_p]) == (
        "<|system|>\nBe brief.\n<|user|>\nDefine cat.\n<|assistant|>\na small feline\n"
        "<|user|>\nUse it in a sentence.\n<|assistant|>\n"
    )
    n_r = len(_ids(tok, "The cat sat on the mat."))
    assert tok.decode(m["input_ids"][n_p : n_p + n_r]) == "The cat sat on the mat."


@pytest.mark.parametrize(
    "bad, msg",
    [
        ('{"prompt": "a", "response": "b"', "invalid JSON"),
        ('["prompt", "response"]', "expected a JSON object"),
        ('{"prompt": "a"}', "'prompt' and 'response'"),
        ('{"messages": [{"role": "user", "content": "a"}]}', "last message must be the assistant"),
        ('{"messages": [{"role": "bot", "content": "a"}]}', "message 0"),
    ],
)
def test_malformed_jsonl_names_file_and_line(tmp_path, bad, msg):
    p = tmp_path / "data.jsonl"
    p.write_text('{"prompt": "a", "response": "b"}\n\n' + bad + "\n")
    with pytest.raises(ValueError, match=msg) as e:
        sft.load_sft_jsonl(p, cache_dir=str(tmp_path / "cache"))
    assert f"{p}, line 3" in str(e.value)


def test_mixed_jsonl_formats_rejected(tmp_path):
    p = tmp_path / "mixed.jsonl"
    conv = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]
    p.write_text('{"prompt": "a", "response": "b"}\n' + json.dumps({"messages": conv}) + "\n")
    with pytest.raises(ValueError, match="line 2"):
        sft.validate_sft_jsonl(p)
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(ValueError, match="no examples"):
        sft.validate_sft_jsonl(tmp_path / "empty.jsonl")


# ------------------------------------------------------------------------------------- WordNet
HEADER = (
    "  1 This software and database is being provided to you, the LICENSEE, by  \n"
    "  2 Princeton University under the following license.  \n"
    "  3   \n"
)
NOUN = (
    '00001740 05 n 02 dog 0 domestic_dog 0 001 @ 00002000 n 0000 | a member of the genus Canis; '
    '"the dog barked all night"; "puppies are young"  \n'
    "00002000 05 n 01 canine 0 000 | a mammal with pointed teeth  \n"
)
VERB = (
    "00002724 29 v 01 choke 0 002 @ 00001740 v 0000 + 14058252 n 0101 01 + 02 00 | breathe with great "
    'difficulty; "She choked with emotion when she spoke"  \n'
)
ADJ = '00001740 00 a 02 able(a) 0 capable 0 000 | having the means to do something; "able to swim"  \n'


def _tiny_wordnet(d: Path) -> Path:
    (d / "data.noun").write_text(HEADER + NOUN)
    (d / "data.verb").write_text(HEADER + VERB)
    (d / "data.adj").write_text(HEADER + ADJ)
    return d


def test_parse_tiny_wordnet(tmp_path):
    syns = wordnet.load_wordnet(_tiny_wordnet(tmp_path))
    assert [s.lemmas for s in syns] == [("dog", "domestic_dog"), ("canine",), ("choke",), ("able", "capable")]
    dog = syns[0]
    assert (dog.offset, dog.lex_filenum, dog.pos) == (1740, 5, "n")
    assert dog.definition == "a member of the genus Canis"
    assert dog.examples == ("the dog barked all night", "puppies are young")
    assert syns[1].examples == () and syns[2].examples == ("She choked with emotion when she spoke",)


def test_malformed_wordnet_line(tmp_path):
    p = tmp_path / "data.noun"
    p.write_text(HEADER + NOUN + "00003000 05 n zz oops | broken\n")
    with pytest.raises(ValueError, match=r"data.noun:6"):
        list(wordnet.iter_synsets(p))
    assert len(list(wordnet.iter_synsets(p, skip_malformed=True))) == 2


def test_tiny_instruction_set(tmp_path):
    pairs = list(wordnet.instruction_pairs(wordnet.load_wordnet(_tiny_wordnet(tmp_path))))
    got = {(p["task"], p["word"]): p["response"] for p in pairs}
    assert got == {
        ("define", "dog"): "a member of the genus Canis",
        ("synonym", "dog"): "domestic dog",
        ("sentence", "dog"): "The dog barked all night.",
        ("define", "domestic dog"): "a member of the genus Canis",
        ("synonym", "domestic dog"): "dog",
        ("define", "canine"): "a mammal with pointed teeth",
        ("define", "choke"): "breathe with great difficulty",
        ("sentence", "choke"): "She choked with emotion when she spoke.",  # inflection found
        ("define", "able"): "having the means to do something",
        ("synonym", "able"): "capable",
        ("sentence", "able"): "Able to swim.",
        ("define", "capable"): "having the means to do something",
        ("synonym", "capable"): "able",
    }
    assert next(p for p in pairs if p["task"] == "synonym")["prompt"] == "Give a synonym of dog."
    dd = wordnet.build_wordnet_sft(tmp_path, heldout_fraction=0.2)  # holds out "dog" and "capable"
    assert set(dd) == {"train", "heldout"} and dd["train"].num_rows + dd["heldout"].num_rows == len(pairs)
    assert set(dd["heldout"]["word"]) == {"dog", "capable"}
    assert not {"dog", "capable"} & {p.split(" ", 1)[1] for p in dd["train"]["prompt"] if p.startswith("Define")}
    assert dd["train"].column_names == ["prompt", "response", "task", "word"]
    for split in dd:
        assert all(wordnet.is_held_out(w, 0.2) == (split == "heldout") for w in dd[split]["word"])
    out = wordnet.write_wordnet_jsonl(dd, tmp_path / "out")
    rows = [json.loads(x) for x in out["train"].read_text().splitlines()]
    assert rows == dd["train"].to_list()
    assert sft.validate_sft_jsonl(out["train"]) == "prompt_response"


def test_held_out_split_is_by_word_and_stable():
    words = [f"word{i}" for i in range(4000)]
    held = {w for w in words if wordnet.is_held_out(w)}
    assert 0.03 < len(held) / len(words) < 0.07
    assert held == {w for w in words if wordnet.is_held_out(w)}
    assert all(wordnet.is_held_out(w.upper()) == (w in held) for w in words[:200])  # case-insensitive key
    assert wordnet.is_held_out("living_thing") == wordnet.is_held_out("living thing")


def test_check_format():
    cf = wordnet.check_format
    assert cf("synonym", "dog", "domestic dog")
    assert not cf("synonym", "dog", "dog")
    assert not cf("synonym", "dog", "Dogs")
    assert not cf("synonym", "dog", "A dog is a loyal animal that barks.")
    assert not cf("synonym", "dog", "hound, cur")
    assert not cf("synonym", "dog", "")
    assert cf("sentence", "choke", "She choked with emotion.")
    assert cf("sentence", "run", "He ran home!", wordnet.load_exceptions(wordnet.WORDNET_DIR) or {"run": {"ran"}})
    assert cf("sentence", "living thing", "Every living thing needs water.")
    assert not cf("sentence", "dog", "The cat sat on the mat.")  # word missing
    assert not cf("sentence", "dog", "the dog barked")  # no final punctuation
    assert not cf("sentence", "dog", "Dog.")  # the word alone
    assert not cf("sentence", "dog", "The dog barked.\nThe dog slept.")
    assert not cf("sentence", "dog", "The hotdog sold out.")  # not a whole-word match
    assert not cf("sentence", "dog", "Use dog in a sentence.")  # the prompt echoed
    assert cf("define", "dog", "a domesticated canine kept as a pet")
    assert not cf("define", "dog", "dog is a canine")
    assert not cf("define", "dog", "dogs are canines")
    assert not cf("define", "dog", "word " * 80)
    with pytest.raises(ValueError, match="unknown task"):
        cf("rhyme", "dog", "log")


@pytest.mark.slow  # ~10 s on a busy 2-core CPU: parses all 117k synsets
@pytest.mark.requires("wordnet")
def test_real_wordnet_smoke():
    dd = wordnet.build_wordnet_sft()
    col = lambda split, name: dd[split].data.column(name).to_pylist()  # noqa: E731 (fast, via Arrow)
    tasks = col("train", "task") + col("heldout", "task")
    for task in wordnet.TASKS:
        assert tasks.count(task) > 10_000, (task, tasks.count(task))
    train_words = {w.lower() for w in col("train", "word")}
    held_words = {w.lower() for w in col("heldout", "word")}
    assert held_words and not train_words & held_words
    assert 0.03 < len(held_words) / (len(held_words) + len(train_words)) < 0.07
    exc = wordnet.load_exceptions()
    sample = dd["train"].select(range(0, dd["train"].num_rows, 97))
    ok = [wordnet.check_format(r["task"], r["word"], r["response"], exc) for r in sample]
    assert sum(ok) / len(ok) > 0.97  # WordNet's own answers are in the expected format
