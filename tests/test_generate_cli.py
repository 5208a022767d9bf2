"""recipes/generate.py for text: the sampler flags come from MDLMGenerationConfig; many samples run in batches
streamed to a JSONL file; outputs never land in the current directory or replace a file without --overwrite;
the EOS policy and pad suppression can be turned off; a streamer sees every step."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch

from mdlm.generation_defaults import load_generation_defaults, save_generation_defaults
from mdlm.modeling import MDLMConfig, MDLMForMaskedLM
from mdlm.sampling import MDLMGenerationConfig, generate
from mdlm.tokenizers.text import padded_vocab_size, train_bpe

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ["Now is the winter of our discontent made glorious summer by this sun of York.",
          "To be, or not to be, that is the question.", "All the world's a stage, and all the men merely players."]

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    """A random text checkpoint whose LM head is padded beyond its tokenizer (multiple of 64)."""
    d = tmp_path_factory.mktemp("gen") / "model"
    tok = train_bpe(CORPUS, vocab_size=300, min_frequency=1)
    torch.manual_seed(0)
    cfg = MDLMConfig(vocab_size=padded_vocab_size(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                     num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=64,
                     mask_token_id=tok.mask_token_id, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
    MDLMForMaskedLM(cfg).save_pretrained(d)
    tok.save_pretrained(d)
    save_generation_defaults(str(d), {"mask_token_id": tok.mask_token_id, "eos_token_id": tok.eos_token_id,
                                      "pad_token_id": tok.pad_token_id, "steps": 8, "gen_length": 8,
                                      "temperature": 1.0, "remasking": "low_confidence", "schedule": "even"})
    return d


def cli(monkeypatch, capsys, *args) -> tuple[int, list[str], list[str]]:
    mod = sys.modules.get("generate_text_cli")
    if mod is None:
        spec = importlib.util.spec_from_file_location("generate_text_cli", ROOT / "recipes" / "generate.py")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        sys.modules["generate_text_cli"] = mod
    monkeypatch.setattr("sys.argv", ["generate.py", *args])
    with pytest.raises(SystemExit) as e:
        mod.main()
    cap = capsys.readouterr()
    return e.value.code, cap.out.strip().splitlines(), cap.err.strip().splitlines()


def test_old_checkpoint_keys_are_mapped_and_round_trip(ckpt, tmp_path):
    stored = json.loads((ckpt / "generation_config.json").read_text())
    assert stored["max_new_tokens"] == 8 and "gen_length" not in stored and "remasking" not in stored
    old = tmp_path / "old"
    old.mkdir()
    (old / "generation_config.json").write_text(json.dumps(  # the layout written before the rename
        {"mask_token_id": 5, "mdlm_sampler": {"sampler": "moment", "choice_temperature": 2.0, "cfg_scale": 1.5,
                                              "cache": "dual", "block_length": 4, "gen_length": 16}}))
    c = MDLMGenerationConfig.from_pretrained(str(old))
    assert (c.unmasking, c.moment_alpha, c.choice_noise, c.guidance_scale) == ("moment", 2.0, 0.0, 1.5)
    assert (c.cache_implementation, c.max_new_tokens, c.mask_token_id) == ("dual", 16, 5)
    c.save_pretrained(str(tmp_path / "new"))
    assert MDLMGenerationConfig.from_pretrained(str(tmp_path / "new")) == c
    (old / "generation_config.json").write_text(json.dumps({"mdlm_generation_config": 2, "stpes": 3}))
    with pytest.raises(ValueError, match="unknown generation setting.*'stpes'"):
        load_generation_defaults(str(old))


def test_many_samples_run_in_batches_and_stream_to_jsonl(ckpt, monkeypatch, capsys, tmp_path):
    calls = []
    import mdlm.pipelines.text as text_pipe

    real = text_pipe.generate

    def spy(model, canvas, **kw):
        calls.append(canvas.shape[0])
        return real(model, canvas, **kw)

    monkeypatch.setattr(text_pipe, "generate", spy)
    out = tmp_path / "s.jsonl"
    code, stdout, err = cli(monkeypatch, capsys, "--model", str(ckpt), "--num-samples", "10", "--batch-size", "4",
                            "--out", str(out), "--device", "cpu")
    assert code == 0, err
    assert calls == [4, 4, 2]  # memory bounded by the batch, not by --num-samples
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 10 and all(set(r) == {"prompt", "text"} for r in rows)
    assert not Path(f"{out}.partial").exists()
    code, _, err = cli(monkeypatch, capsys, "--model", str(ckpt), "--out", str(out), "--device", "cpu")
    assert code == 2 and "exists; pass --overwrite" in err[-1]


def test_relative_outputs_go_under_the_model_dir(ckpt, monkeypatch, capsys, tmp_path):
    monkeypatch.chdir(tmp_path)
    code, stdout, err = cli(monkeypatch, capsys, "--model", str(ckpt), "--out", "t.jsonl", "--device", "cpu")
    assert code == 0, err
    assert (ckpt / "samples" / "t.jsonl").is_file() and not (tmp_path / "t.jsonl").exists()
    code, _, err = cli(monkeypatch, capsys, "--model", str(ckpt), "--out", "t.jsonl", "--output-dir", str(tmp_path / "o"),
                       "--device", "cpu")
    assert code == 0 and (tmp_path / "o" / "t.jsonl").is_file()


def test_sampler_flags_override_the_checkpoint_and_bad_ones_are_one_line(ckpt, monkeypatch, capsys):
    seen = {}
    import mdlm.pipelines.text as text_pipe

    real = text_pipe.generate

    def spy(model, canvas, **kw):
        seen.update(config=kw["config"], suppress=kw["suppress_tokens"], eos=kw["eos_id"])
        return real(model, canvas, **kw)

    monkeypatch.setattr(text_pipe, "generate", spy)
    code, _, err = cli(monkeypatch, capsys, "--model", str(ckpt), "--prompt", "To be", "--temperature", "0",
                       "--no_stop_at_eos", "--no_suppress_pad", "--guidance-scale", "1", "--gen-length", "6", "--steps", "3",
                       "--device", "cpu")
    assert code == 0, err
    c = seen["config"]
    assert (c.temperature, c.stop_at_eos, c.suppress_pad, c.guidance_scale, c.max_new_tokens, c.steps) == \
        (0.0, False, False, 1.0, 6, 3)
    assert seen["suppress"] == []  # pad may be sampled, as in LLaDA's generate()
    code, _, err = cli(monkeypatch, capsys, "--model", str(ckpt), "--unmasking", "nope", "--device", "cpu")
    assert code == 2 and len(err) == 1 and "--unmasking" in err[0]
    code, _, err = cli(monkeypatch, capsys, "--model", str(ckpt), "--unmasking", "fast_dllm", "--device", "cpu")
    assert code == 2 and err[-1].startswith("error: unmasking='fast_dllm' needs a threshold (e.g. 0.9)")


def test_a_streamer_sees_the_canvas_before_and_after_every_step():
    class Streamer:  # the transformers BaseStreamer interface
        def __init__(self):
            self.canvases, self.ended = [], 0

        def put(self, value):
            self.canvases.append(value)

        def end(self):
            self.ended += 1

    s = Streamer()
    x = torch.full((2, 6), 9)
    out = generate(lambda ids: torch.randn(*ids.shape, 10, generator=torch.Generator().manual_seed(int(ids.sum()))),
                   x, mask_id=9, config=MDLMGenerationConfig(steps=3, temperature=0.0), streamer=s)
    assert len(s.canvases) == out.steps + 1 == 4 and s.ended == 1
    masked = [int((c == 9).sum()) for c in s.canvases]
    assert masked == sorted(masked, reverse=True) and masked[0] == 12 and masked[-1] == 0
