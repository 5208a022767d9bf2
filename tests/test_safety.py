"""Nothing lost, one clear line, safetensors only (issue #14 §2–4): one test per kind of fault.

Each test names the kind it guards; CLI tests check the exit status and the one ``error:`` line.
Tiny models on real Shakespeare, a few seconds each (a subprocess costs the interpreter start-up).
"""

import importlib.util
import io
import json
import os
import shutil
import subprocess
import sys
from contextlib import redirect_stdout
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

import mdlm  # noqa: F401  (registers the model)

ROOT = Path(__file__).resolve().parents[1]
TINY = [
    "--dataset", "shakespeare", "--tokenizer", "bpe", "--bpe_vocab_size", "300", "--max_train_documents", "40",
    "--seq_len", "32", "--hidden_size", "32", "--num_hidden_layers", "1", "--num_attention_heads", "2",
    "--per_device_train_batch_size", "8", "--per_device_eval_batch_size", "32", "--max_eval_sequences", "16",
    "--eval_num_samples", "1", "--learning_rate", "0.004", "--logging_steps", "1", "--report_to", "none",
    "--use_cpu", "true", "--disable_tqdm", "true", "--seed", "0", "--dataloader_num_workers", "0",
    "--save_strategy", "steps", "--sample_on_end", "0",
]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "recipes" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def recipe():
    return _load("train_text")


def _train(recipe, out, *extra, callbacks=()):
    with redirect_stdout(io.StringIO()):
        return recipe.train(TINY + ["--output_dir", str(out), *extra], callbacks=callbacks)


@pytest.fixture(scope="module")
def finished(recipe, tmp_path_factory):
    """A finished 2-step run with checkpoint-2 (shared, never modified by the tests: they copy it)."""
    out = tmp_path_factory.mktemp("safety") / "run"
    _train(recipe, out, "--max_steps", "2", "--save_steps", "2")
    return out


def _cli(script: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), MDLM_DEBUG="")
    return subprocess.run([sys.executable, str(ROOT / script), *args], check=False, cwd=cwd, capture_output=True, text=True,
                          env=env, timeout=300)


def _last_line(r: subprocess.CompletedProcess) -> str:
    assert "Traceback" not in r.stderr, r.stderr[-2000:]
    return r.stderr.strip().splitlines()[-1]


def _snapshot(d: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(d)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(d.rglob("*")) if p.is_file()}


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


# ---------------------------------------------------------------------------------- §2 nothing lost
def test_resuming_a_finished_run_says_so_and_changes_nothing(finished, tmp_path):
    run = _copy(finished, tmp_path / "run")
    before = _snapshot(run)
    r = _cli("recipes/train_text.py", *TINY, "--output_dir", str(run), "--max_steps", "2", "--save_steps", "2",
             "--resume_from_checkpoint", "auto", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "holds a finished run (step 2, max_steps 2); nothing to do and nothing changed" in _last_line(r)
    assert _snapshot(run) == before  # no checkpoint-3, the final model untouched


def test_resuming_a_finished_run_without_checkpoints_refuses_to_start_over(finished, tmp_path):
    """A run saved with save_strategy 'no' has its final model and no checkpoint: `--resume_from_checkpoint auto`
    with a larger --max_steps would retrain from scratch and replace the model, so it is refused."""
    run = _copy(finished, tmp_path / "run")
    shutil.rmtree(run / "checkpoint-2")
    before = _snapshot(run)
    r = _cli("recipes/train_text.py", *TINY, "--output_dir", str(run), "--max_steps", "4", "--save_steps", "2",
             "--resume_from_checkpoint", "auto", cwd=tmp_path)
    assert r.returncode == 2 and "no complete checkpoint to resume from" in _last_line(r), r.stderr[-2000:]
    assert _snapshot(run) == before  # the final model untouched


def test_killed_during_the_final_save_finishes_without_training_past_max_steps(recipe, finished, tmp_path):
    """checkpoint-2 = max_steps, but no final model (and no 'finished' mark): the resume only finishes."""
    run = _copy(finished, tmp_path / "run")
    (run / "model.safetensors").unlink()
    marker = json.loads((run / "mdlm_run.json").read_text())
    (run / "mdlm_run.json").write_text(json.dumps({k: v for k, v in marker.items() if k != "finished"}))
    trainer = _train(recipe, run, "--max_steps", "2", "--save_steps", "2", "--resume_from_checkpoint", "auto")
    assert trainer.state.global_step == 2
    assert sorted(p.name for p in run.glob("checkpoint-*")) == ["checkpoint-2"]
    final, ckpt = load_file(run / "model.safetensors"), load_file(run / "checkpoint-2" / "model.safetensors")
    assert all(torch.equal(final[k], ckpt[k]) for k in ckpt)  # the final model IS the max_steps checkpoint


def test_nonfinite_weights_are_never_saved_and_the_message_is_true(recipe, tmp_path):
    from mdlm.training import NonFiniteError

    # a finite loss, then weights that overflow to inf in the first update: nothing may be written
    with pytest.raises(NonFiniteError, match=r"weights became NaN/inf by step 1 .*checkpoint-1 was not written; "
                                             r"no checkpoint of this run was written"):
        _train(recipe, tmp_path / "a", "--max_steps", "3", "--save_steps", "1", "--learning_rate", "1e39",
               "--max_grad_norm", "0", "--warmup_steps", "0")
    assert not list((tmp_path / "a").glob("checkpoint-*")) and not (tmp_path / "a" / "model.safetensors").exists()
    # huge but finite weights after step 1 (saved), NaN gradients at step 2: stopped before the update
    with pytest.raises(NonFiniteError, match=r"gradients became NaN/inf at step 2\b.*the newest checkpoint, "
                                             r".*checkpoint-1, is untouched"):
        _train(recipe, tmp_path / "b", "--max_steps", "3", "--save_steps", "1", "--learning_rate", "1e30",
               "--max_grad_norm", "0", "--warmup_steps", "0")
    saved = load_file(tmp_path / "b" / "checkpoint-1" / "model.safetensors")
    assert all(torch.isfinite(v).all() for v in saved.values())
    assert not (tmp_path / "b" / "checkpoint-2").exists()


def test_a_failed_start_does_not_block_its_own_directory(recipe, tmp_path):
    out = tmp_path / "run"
    with pytest.raises(ValueError, match="bad --model_config: mask_token_id 99999 lies outside the vocabulary"):
        _train(recipe, out, "--max_steps", "1", "--model_config", '{"mask_token_id": 99999}')
    assert (out / "mdlm_run.json").exists()  # it had marked the dir (and saved its tokenizer)
    trainer = _train(recipe, out, "--max_steps", "1", "--hidden_size", "16")  # corrected, other settings
    assert trainer.state.global_step == 1 and (out / "model.safetensors").exists()


def test_the_run_tokenizer_save_is_staged(tmp_path, monkeypatch):
    from mdlm.tokenizers import train_bpe
    from mdlm.training.run import save_run_tokenizer

    tok = train_bpe(["hello world, hello there"] * 20, vocab_size=280)
    save_run_tokenizer(tok, str(tmp_path))
    good = (tmp_path / "tokenizer" / "tokenizer.json").read_bytes()

    def dies_half_way(self, d, *a, **k):
        os.makedirs(d, exist_ok=True)
        Path(d, "tokenizer.json").write_text("{")  # half a file, then the kill
        raise KeyboardInterrupt

    monkeypatch.setattr(type(tok), "save_pretrained", dies_half_way)
    with pytest.raises(KeyboardInterrupt):
        save_run_tokenizer(tok, str(tmp_path))
    assert (tmp_path / "tokenizer" / "tokenizer.json").read_bytes() == good  # the old one is whole


def test_image_token_cache_is_keyed_on_the_files(tmp_path):
    from types import SimpleNamespace

    from mdlm.data.image_tokens import cache_path

    folder = tmp_path / "imgs"
    for c in ("cat", "dog"):
        (folder / c).mkdir(parents=True)
        (folder / c / "a.png").write_bytes(b"x" * 10)
    src = SimpleNamespace(dataset=f"imagefolder:{folder}", data_dir=None, image_size=8, channels=1,
                          cache_dir=str(tmp_path / "cache"), encode_batch_size=64)
    key = cache_path(src, "vq1")
    assert cache_path(src, "vq1") == key  # unchanged source: reused
    assert cache_path(src, "vq2") != key  # another VQ
    (folder / "bird").mkdir()
    (folder / "bird" / "b.png").write_bytes(b"y" * 10)
    added = cache_path(src, "vq1")
    assert added != key  # a new class folder
    (folder / "cat" / "a.png").write_bytes(b"z" * 11)
    assert cache_path(src, "vq1") != added  # an edited image
    src.channels = 3
    assert cache_path(src, "vq1") not in (key, added)  # another conversion


def test_the_checkpoint_records_its_training_objective(finished):
    cfg = json.loads((finished / "config.json").read_text())
    assert cfg["training_objective"] == {"objective": "mdm", "schedule": "linear", "weighting": "elbo", "t_min": 0.001,
                                         "masking": "mdm", "antithetic": True, "normalization": "token",
                                         "cond_dropout": 0.0}
    ckpt = json.loads((finished / "checkpoint-2" / "config.json").read_text())
    assert ckpt["training_objective"] == cfg["training_objective"]


# ---------------------------------------------------------------------------------- §4 safetensors only
def test_no_pickled_object_is_written(finished):
    for d in (finished, finished / "checkpoint-2"):
        assert not (d / "training_args.bin").exists() and (d / "training_args.json").is_file()
    # the only torch.save files left are the Trainer state, which transformers loads with weights_only=True
    assert sorted(p.name for p in finished.rglob("*") if p.suffix in (".bin", ".pt", ".pth", ".pkl")) == [
        "optimizer.pt", "rng_state.pth", "scheduler.pt"]


def test_pickle_weights_are_refused_everywhere_with_how_to_convert(recipe, finished, tmp_path):
    from mdlm.pipelines import load_for_generation

    pkl = _copy(finished, tmp_path / "pkl")
    shutil.rmtree(pkl / "checkpoint-2")
    torch.save(load_file(pkl / "model.safetensors"), pkl / "pytorch_model.bin")
    (pkl / "model.safetensors").unlink()
    with pytest.raises(ValueError, match=r"holds only pickle weights \(pytorch_model.bin\).*convert it once"):
        load_for_generation(str(pkl))
    with pytest.raises(ValueError, match="model_name_or_path .* holds only pickle weights"):
        _train(recipe, tmp_path / "ft", "--max_steps", "1", "--model_name_or_path", str(pkl))
    # the documented conversion makes it loadable
    from transformers import AutoModelForMaskedLM

    AutoModelForMaskedLM.from_pretrained(str(pkl), use_safetensors=False).save_pretrained(str(pkl))
    assert load_for_generation(str(pkl)).model is not None


def test_pickle_adapter_is_refused(finished, tmp_path):
    from mdlm.lora import LoraArguments, apply_lora, load_adapter, save_adapter
    from mdlm.pipelines import load_for_generation

    base = load_for_generation(str(finished)).model
    ad = tmp_path / "adapter"
    save_adapter(apply_lora(base, LoraArguments(r=2)), str(ad))
    torch.save(load_file(ad / "adapter_model.safetensors"), ad / "adapter_model.bin")
    (ad / "adapter_model.safetensors").unlink()
    fresh = load_for_generation(str(finished)).model
    with pytest.raises(ValueError, match=r"adapter .* holds only pickle weights \(adapter_model.bin\).*convert"):
        load_adapter(fresh, str(ad))
    with pytest.raises(ValueError, match="holds only pickle weights"):
        load_for_generation(str(finished), adapter=str(ad))


# ---------------------------------------------------------------------------------- §3 one clear line
def test_damaged_or_nonfinite_weights_are_one_line_in_generate_and_resume(finished, tmp_path):
    bad = {}
    for kind in ("empty", "truncated", "nan"):
        d = bad[kind] = _copy(finished, tmp_path / kind)
        w = d / "model.safetensors"
        if kind == "nan":
            sd = {k: v.clone() for k, v in load_file(w).items()}
            next(iter(sd.values())).view(-1)[0] = float("nan")
            save_file(sd, w, metadata={"format": "pt"})
        else:
            w.write_bytes(w.read_bytes()[: 0 if kind == "empty" else 1000])
    expect = {"empty": r"model.safetensors is empty \(0 bytes\)", "truncated": "model.safetensors is damaged or truncated",
              "nan": "the weights in .* are not finite: 1 of"}
    import re

    from mdlm.pipelines import load_for_generation

    for kind, d in bad.items():
        with pytest.raises(ValueError, match=expect[kind]):
            load_for_generation(str(d))
    from mdlm.training.checkpoint import check_checkpoint

    nan_ckpt = bad["nan"] / "checkpoint-2"  # a NaN checkpoint (from an older version) is never resumed
    shutil.copy(bad["nan"] / "model.safetensors", nan_ckpt / "model.safetensors")
    with pytest.raises(ValueError, match=r"cannot resume: checkpoint .*checkpoint-2 holds non-finite weights"):
        check_checkpoint(str(nan_ckpt))
    r = _cli("recipes/generate.py", "--model", str(bad["nan"]), "--prompt", "hi", cwd=tmp_path)
    assert r.returncode == 2 and re.match(r"error: the weights in .* are not finite", _last_line(r))
    # resume from a checkpoint whose weights were truncated: one line naming the file
    run = bad["truncated"]
    ck = run / "checkpoint-2" / "model.safetensors"
    ck.write_bytes(ck.read_bytes()[:1000])
    marker = json.loads((run / "mdlm_run.json").read_text())
    (run / "mdlm_run.json").write_text(json.dumps({k: v for k, v in marker.items() if k != "finished"}))
    r = _cli("recipes/train_text.py", *TINY, "--output_dir", str(run), "--max_steps", "4",
             "--resume_from_checkpoint", "auto", cwd=tmp_path)
    assert r.returncode == 2
    assert re.match(r"error: cannot resume: .*checkpoint-2/model.safetensors is damaged or truncated", _last_line(r))


@pytest.mark.parametrize("extra, line", [
    (["--seq_len", "0"], "error: --seq_len must be an integer ≥ 2 (tokens per training sequence), got 0"),
    (["--seq_len", "abc"], "error: argument --seq_len/--seq-len: invalid int value: 'abc' (see train_text.py --help)"),
])
def test_bad_options_are_one_line(tmp_path, extra, line):
    r = _cli("recipes/train_text.py", *TINY, "--output_dir", str(tmp_path / "o"), "--max_steps", "1", *extra,
             cwd=tmp_path)
    assert r.returncode == 2 and _last_line(r) == line
    assert not (tmp_path / "o").exists()  # refused before anything is written


@pytest.mark.parametrize("extra, message", [
    (["--hidden_size", "-4"], "--hidden_size must be a positive integer, got -4"),
    (["--max_eval_sequences", "0"], "--max_eval_sequences must be a positive integer, got 0"),
    (["--eval_num_samples", "0"], "--eval_num_samples must be a positive integer, got 0"),
    (["--model_config", "{oops"], r"--model_config is not valid JSON \(Expecting property name"),
    (["--model_config", "[1]"], "--model_config must be a JSON object"),
])
def test_bad_sizes_and_json_are_named(recipe, tmp_path, extra, message):
    with pytest.raises(ValueError, match=message):
        _train(recipe, tmp_path / "o", "--max_steps", "1", *extra)


def test_model_config_values_are_checked(recipe, tmp_path):
    with pytest.raises(ValueError, match="the tokenizer has 300 tokens but the model's vocabulary has only 100"):
        _train(recipe, tmp_path / "v", "--max_steps", "1", "--model_config", '{"vocab_size": 100}')
    with pytest.raises(ValueError, match="bad --model_config: vocab_size must be a positive integer, got 'x'"):
        _train(recipe, tmp_path / "w", "--max_steps", "1", "--model_config", '{"vocab_size": "x"}')
    with pytest.raises(ValueError, match="the model's mask_token_id 3 is not the tokenizer's"):
        _train(recipe, tmp_path / "m", "--max_steps", "1", "--model_config", '{"mask_token_id": 3}')


def test_malformed_yaml_is_one_line(tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("dataset: shakespeare\n  seq_len: [\n")
    r = _cli("recipes/train_vq.py", "--config", str(cfg), cwd=tmp_path)
    assert r.returncode == 2 and _last_line(r).startswith(f"error: config '{cfg}' is not valid YAML (line 2")


def test_a_finished_lora_run_is_not_taken_for_a_failed_start(tmp_path):
    """An output dir holding a finished run's LoRA adapter (no model.safetensors) is protected like a full model:
    another run is refused, never 'started afresh' over it."""
    from mdlm.training.checkpoint import check_output_dir, write_marker

    out = tmp_path / "adapter_run"
    write_marker(str(out), {"fingerprint": "abc", "finished": {"global_step": 30}})
    (out / "adapter_model.safetensors").write_bytes(b"weights")
    with pytest.raises(ValueError, match="holds another run"):
        check_output_dir(str(out), resume=False, run_fingerprint="other")
    with pytest.raises(ValueError, match="finished at step 30"):
        check_output_dir(str(out), resume=False, run_fingerprint="abc")
    (out / "adapter_model.safetensors").unlink()  # nothing saved: a failed start, which any run may take over
    assert check_output_dir(str(out), resume=False, run_fingerprint="other") == "failed-start"
