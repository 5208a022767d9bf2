"""The demo's adapter to the sampler (mdlm/demo/stream.py): one frame per step in order, the same text as the
pipeline, early stop ends the sampler run itself, errors reach the consumer. In-process, tiny random model."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import pytest
import torch
from demo_fixtures import tiny_text_checkpoint

from mdlm.demo.render import MASKED, canvas_pieces, to_ansi, to_highlighted
from mdlm.demo.stream import (
    Done,
    Frame,
    Stopped,
    sampler_config,
    stream_run,
    stream_text,
)
from mdlm.pipelines import generate_text, load_for_generation

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    return load_for_generation(str(tiny_text_checkpoint(tmp_path_factory.mktemp("stream") / "text")))


def test_one_frame_per_step_masks_fall_and_the_text_is_the_pipelines(loaded):
    config, g = sampler_config(loaded.defaults, steps=8, temperature=1.0, block_length=8, schedule="even")
    items = list(stream_text(loaded.model, loaded.tokenizer, "to be", config, g, seed=5))
    frames, done = items[:-1], items[-1]
    assert all(isinstance(f, Frame) for f in frames) and isinstance(done, Done)
    assert [f.step for f in frames] == list(range(1, 9)) and done.steps == 8 and done.nfe == frames[-1].nfe == 8
    mask = loaded.tokenizer.mask_token_id
    masked = [int((f.canvas[0, -g:] == mask).sum()) for f in frames]
    assert masked == [14, 12, 10, 8, 6, 4, 2, 0]  # 16 positions, 2 blocks of 8 in 4 steps each, even split
    assert all(int(f.committed.sum()) == 2 for f in frames)
    texts, out = generate_text(loaded.model, loaded.tokenizer, ["to be"], config, g, seed=5)
    assert done.result[0] == texts and torch.equal(frames[-1].canvas, out.sequences)


def test_closing_the_stream_stops_the_sampler_at_its_next_step():
    seen, calls = [], []

    def run(cb):  # a stand-in sampler loop with the callback contract of mdlm.sampling
        for step in range(1000):
            calls.append(step)
            info = SimpleNamespace(max_steps=1000, committed=torch.zeros(1, 4, dtype=torch.bool), nfe=step + 1)
            cb(step, torch.zeros(1, 4, dtype=torch.long), info)
        return "finished"

    stream = stream_run(run)
    for item in stream:
        seen.append(item.step)
        if len(seen) == 3:
            stream.close()  # what Ctrl-C or a closed browser tab does
            break
    assert seen == [1, 2, 3] and len(calls) < 1000  # the worker ended early, and was joined by close()


def test_a_sampler_error_reaches_the_consumer_and_stop_event_ends_the_run(loaded):
    config, g = sampler_config(loaded.defaults, steps=1, block_length=4)  # 4 blocks need ≥ 4 steps
    with pytest.raises(ValueError, match="steps"):
        list(stream_text(loaded.model, loaded.tokenizer, "", config, g))
    stop = threading.Event()
    stop.set()
    config, g = sampler_config(loaded.defaults)
    with pytest.raises(Stopped):
        list(stream_text(loaded.model, loaded.tokenizer, "", config, g, stop=stop))


def test_pieces_show_masks_new_and_kept_tokens(loaded):
    tok = loaded.tokenizer
    a, b = tok(" quick", add_special_tokens=False)["input_ids"][0], tok(" fox", add_special_tokens=False)["input_ids"][0]
    ids = torch.tensor([a, tok.mask_token_id, tok.eos_token_id, b])
    new = torch.tensor([True, False, False, False])
    pieces = canvas_pieces(tok, ids, new)
    ta, tb = tok.decode([a]), tok.decode([b])
    assert [p.text for p in pieces] == [ta, "░", "", tb]  # EOS shows nothing
    assert [p.kind for p in pieces] == ["new", MASKED, "kept", "kept"]
    assert to_ansi(pieces) == f"\x1b[1;32m{ta}\x1b[0m\x1b[2m░\x1b[0m{tb}"
    assert to_highlighted(pieces) == [(ta, "new"), ("░", "masked"), (tb, None)]
    escape = tok("\x1b[2J", add_special_tokens=False)["input_ids"]  # "clear the screen", if a model wrote it
    assert "\x1b" in tok.decode(escape) and "\x1b" not in "".join(p.text for p in canvas_pieces(tok, torch.tensor(escape)))


def test_a_lora_adapter_dir_is_served_as_the_text_model(loaded, tmp_path):
    from mdlm.demo.models import load_demo_models
    from mdlm.lora import LoraArguments, apply_lora, save_adapter, set_base_path

    base = loaded.base_dir
    torch.manual_seed(1)
    peft_model = apply_lora(load_for_generation(base).model, LoraArguments(r=2, dropout=0.0))
    for name, p in peft_model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(p, std=0.5)  # a non-zero update, so the adapter changes the output
    set_base_path(peft_model, base)
    save_adapter(peft_model, str(tmp_path / "adapter"), loaded.tokenizer, {"steps": 8, "gen_length": 16})
    models = load_demo_models([str(tmp_path / "adapter")])
    assert models.image is None and models.text.model_dir == str(tmp_path / "adapter")
    config, g = sampler_config(models.text.defaults, schedule="even", temperature=0.0)
    adapted = list(stream_text(models.text.model, models.text.tokenizer, "to be", config, g))[-1].result[1].sequences
    plain = list(stream_text(loaded.model, loaded.tokenizer, "to be", config, g))[-1].result[1].sequences
    assert adapted.shape == plain.shape and not torch.equal(adapted, plain)


def test_zero_in_the_ui_switches_off_a_checkpoint_default():
    defaults = {"steps": 8, "gen_length": 16, "block_length": 8, "threshold": 0.9}
    config, _ = sampler_config(defaults)
    assert (config.block_length, config.threshold) == (8, 0.9)
    config, _ = sampler_config(defaults, ("block_length", "threshold"), steps=4)
    assert (config.block_length, config.threshold, config.steps) == (None, None, 4)
