"""Text training end to end on real Shakespeare: loss falls, resume is exact, crashes are safe,
bad input gets one clear error. Tiny models, CPU, a few seconds each."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import TrainerCallback

ROOT = Path(__file__).resolve().parents[1]
TINY = [
    "--dataset", "shakespeare", "--tokenizer", "bpe", "--bpe_vocab_size", "384", "--max_train_documents", "120",
    "--seq_len", "64", "--hidden_size", "64", "--num_hidden_layers", "2", "--num_attention_heads", "2",
    "--per_device_train_batch_size", "16", "--per_device_eval_batch_size", "64", "--max_eval_sequences", "64",
    "--eval_num_samples", "2", "--learning_rate", "0.004", "--warmup_steps", "5", "--logging_steps", "1",
    "--report_to", "none", "--use_cpu", "true", "--disable_tqdm", "true", "--seed", "0",
    "--dataloader_num_workers", "0", "--save_strategy", "steps", "--sample_on_end", "0",
]


def _recipe():
    spec = importlib.util.spec_from_file_location("train_text", ROOT / "recipes" / "train_text.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def recipe():
    return _recipe()


def _losses(trainer):
    return {h["step"]: h["loss"] for h in trainer.state.log_history if "loss" in h}


@pytest.fixture(scope="module")
def trained(recipe, tmp_path_factory):
    """One tiny model trained 40 steps on real Shakespeare, shared by the tests below."""
    import io
    from contextlib import redirect_stdout

    out = tmp_path_factory.mktemp("trained") / "run"
    buf = io.StringIO()
    with redirect_stdout(buf):
        trainer = recipe.train(TINY + ["--output_dir", str(out), "--max_steps", "40", "--save_steps", "40",
                                       "--sample_on_end", "2"])
    return out, trainer, buf.getvalue()


def test_tiny_model_validation_elbo_falls_on_shakespeare(trained):
    out, trainer, printed = trained
    final = json.loads((out / "eval_metrics.json").read_text())
    # an untrained model scores ≈ log(V) = log(384) ≈ 5.95 nats/token; after 40 steps it must be well below
    assert final["eval_nll"] < 5.0, final
    assert final["eval_ppl"] == pytest.approx(torch.tensor(final["eval_nll"]).exp().item(), rel=1e-4)
    losses = list(_losses(trainer).values())
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5
    assert "--- unconditional sample" in printed and "--- sample after 'ROMEO:'" in printed
    # the output dir is a complete HF checkpoint
    for f in ["config.json", "model.safetensors", "tokenizer.json", "generation_config.json"]:
        assert (out / f).exists(), f
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    model = AutoModelForMaskedLM.from_pretrained(out)
    tok = AutoTokenizer.from_pretrained(out)
    assert model.config.mask_token_id == tok.mask_token_id


def test_eval_elbo_cli_reports_the_bound(trained, tmp_path):
    out, _, _ = trained
    r = subprocess.run([sys.executable, str(ROOT / "eval" / "elbo.py"), "--model", str(out), "--num-samples", "2",
                        "--max-sequences", "16", "--seq-len", "64", "--json", str(tmp_path / "e.json")],
                       capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "perplexity ≤" in r.stdout and "bits/token" in r.stdout
    res = json.loads((tmp_path / "e.json").read_text())
    assert 1.0 < res["nats_per_token"] < 5.5 and res["tokens"] == 16 * 64


def test_generate_cli_prints_text_for_each_prompt(trained):
    out, _, _ = trained
    r = subprocess.run([sys.executable, str(ROOT / "recipes" / "generate.py"), "--model", str(out), "--prompt", "ROMEO:",
                        "--prompt", "To be", "--steps", "8", "--gen-length", "16", "--block-length", "8", "--seed", "3"],
                       capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "=== 'ROMEO:'" in r.stdout and "=== 'To be'" in r.stdout
    assert "8 NFE" in r.stderr or "16 NFE" in r.stderr  # 2 blocks × 4 steps, no CFG
    bad = subprocess.run([sys.executable, str(ROOT / "recipes" / "generate.py"), "--model", str(out), "--prompt", "x" * 10,
                          "--gen-length", "4000"], capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=300)
    assert bad.returncode == 2 and "more than the model's context of 64" in bad.stderr


class _Crash(TrainerCallback):
    """Simulates a kill: raises at the start of step ``at`` (after the checkpoint before it)."""

    def __init__(self, at):
        self.at = at

    def on_step_begin(self, args, state, control, **kw):
        if state.global_step == self.at:
            raise KeyboardInterrupt("simulated kill")


def test_resume_after_a_kill_continues_exactly(recipe, tmp_path):
    args = TINY + ["--max_steps", "8", "--save_steps", "4"]
    ref = recipe.train(args + ["--output_dir", str(tmp_path / "ref")])
    with pytest.raises(KeyboardInterrupt):
        recipe.train(args + ["--output_dir", str(tmp_path / "cut")], callbacks=(_Crash(5),))
    assert (tmp_path / "cut" / "checkpoint-4").is_dir()
    # the interrupted dir holds this run: a plain restart is refused, resume is accepted
    with pytest.raises(ValueError, match="resume_from_checkpoint"):
        recipe.train(args + ["--output_dir", str(tmp_path / "cut")])
    res = recipe.train(args + ["--output_dir", str(tmp_path / "cut"), "--resume_from_checkpoint", "auto"])
    a, b = _losses(ref), _losses(res)
    for step in range(5, 9):
        assert a[step] == pytest.approx(b[step], rel=1e-5), (step, a[step], b[step])
    wa = load_file(tmp_path / "ref" / "model.safetensors")
    wb = load_file(tmp_path / "cut" / "model.safetensors")
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], rtol=1e-5, atol=1e-6)


def test_crash_mid_save_never_breaks_the_newest_checkpoint(recipe, tmp_path, monkeypatch):
    from mdlm.training.checkpoint import last_checkpoint
    from mdlm.training.trainer import MDMTrainer

    calls = {"n": 0}
    orig = MDMTrainer._save_optimizer_and_scheduler

    def dying_save(self, output_dir):
        calls["n"] += 1
        if calls["n"] == 2:  # the second checkpoint dies half-written (model saved, optimizer not)
            raise KeyboardInterrupt("killed mid-save")
        return orig(self, output_dir)

    monkeypatch.setattr(MDMTrainer, "_save_optimizer_and_scheduler", dying_save)
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        recipe.train(TINY + ["--output_dir", str(out), "--max_steps", "6", "--save_steps", "3"])
    assert (out / ".staging" / "checkpoint-6").is_dir()  # the half-written one is parked in staging
    assert last_checkpoint(str(out)) == str(out / "checkpoint-3")
    assert (out / "checkpoint-3" / "optimizer.pt").exists()
    monkeypatch.setattr(MDMTrainer, "_save_optimizer_and_scheduler", orig)
    trainer = recipe.train(TINY + ["--output_dir", str(out), "--max_steps", "6", "--save_steps", "3",
                                   "--resume_from_checkpoint", "auto"])
    assert trainer.state.global_step == 6
    assert not (out / ".staging").exists()


def test_nan_loss_stops_with_a_clear_error_and_keeps_the_checkpoint(recipe, tmp_path, monkeypatch):
    from mdlm.training import trainer as tr

    orig = tr.diffusion_loss

    def poisoned(*a, **k):
        out = orig(*a, **k)
        if _state["step"] >= 4:
            out.loss = out.loss * float("nan")
        return out

    _state = {"step": 0}

    class Step(TrainerCallback):
        def on_step_begin(self, args, state, control, **kw):
            _state["step"] = state.global_step

    monkeypatch.setattr(tr, "diffusion_loss", poisoned)
    out = tmp_path / "run"
    with pytest.raises(tr.NonFiniteLossError, match="loss became nan at step 5; training stopped; the newest checkpoint, .*checkpoint-4, is untouched"):
        recipe.train(TINY + ["--output_dir", str(out), "--max_steps", "8", "--save_steps", "2",
                             "--optim", "adamw_torch"], callbacks=(Step(),))  # not fused: checked every step
    good = load_file(out / "checkpoint-4" / "model.safetensors")
    assert all(torch.isfinite(v).all() for v in good.values())
    assert not (out / "model.safetensors").exists()  # no final model written from a broken run


def test_nan_loss_with_fused_adamw_skips_the_update_and_stops_without_a_host_sync_per_step(recipe, tmp_path,
                                                                                           monkeypatch):
    """With a fused AdamW the finiteness checks run on the device: the NaN step's update is skipped (found_inf) and
    the run stops at the next save with the same kind of error; no NaN checkpoint, no final model."""
    from transformers import TrainerCallback

    import mdlm.training.trainer as tr

    orig = tr.diffusion_loss
    state = {"step": 0, "weights": []}

    def poisoned(*a, **k):
        out = orig(*a, **k)
        if state["step"] >= 4:
            out.loss = out.loss * float("nan")
        return out

    class Step(TrainerCallback):
        def on_step_begin(self, args, st, control, model=None, **kw):
            state["step"] = st.global_step
            state["weights"].append(model.get_input_embeddings().weight.detach().clone())

    monkeypatch.setattr(tr, "diffusion_loss", poisoned)
    out = tmp_path / "run"
    with pytest.raises(tr.NonFiniteLossError, match=r"loss became NaN/inf at step 5; the optimizer skipped that update "
                                                    r"and training stopped at step 6; the newest checkpoint, "
                                                    r".*checkpoint-4, is untouched"):
        recipe.train(TINY + ["--output_dir", str(out), "--max_steps", "8", "--save_steps", "2",
                             "--optim", "adamw_torch_fused", "--logging_nan_inf_filter", "false",
                             "--logging_steps", "2"], callbacks=(Step(),))
    assert torch.equal(state["weights"][4], state["weights"][5])  # step 5 (NaN) changed nothing
    assert not torch.equal(state["weights"][3], state["weights"][4])  # step 4 trained
    assert all(torch.isfinite(w).all() for w in state["weights"])
    assert not (out / "checkpoint-6").exists() and not (out / "model.safetensors").exists()


def _cli(args, cwd):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, str(ROOT / "recipes" / "train_text.py"), *args], cwd=cwd,
                          capture_output=True, text=True, env=env, timeout=300)


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--no_such_key", "1"], "unknown argument"),
        (["--dataset", "/nonexistent/corpus.txt"], "not found"),
        (["--seq_len", "64", "--max_position_embeddings", "32"], "exceeds the model's max_position_embeddings"),
        (["--schedule", "wiggly"], "unknown schedule"),
    ],
)
def test_bad_input_gets_one_clear_error(recipe, tmp_path, extra, message):
    with pytest.raises(ValueError, match=message):
        recipe.train(TINY + ["--output_dir", str(tmp_path / "o"), "--max_steps", "1"] + extra)
    assert not (tmp_path / "o" / "model.safetensors").exists()


def test_cli_errors_exit_nonzero_with_one_line(tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("dataset: shakespeare\nnot_a_key: 3\n")
    r = _cli(["--config", str(cfg), "--output_dir", str(tmp_path / "o")], tmp_path)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines()[-1] == f"error: unknown config key(s) in {cfg}: not_a_key"
    # an output dir holding something else is never overwritten
    other = tmp_path / "other"
    other.mkdir()
    (other / "precious.txt").write_text("keep me")
    r = _cli(TINY + ["--output_dir", str(other), "--max_steps", "1"], tmp_path)
    assert r.returncode == 2 and "holds no mdlm run" in r.stderr
    assert (other / "precious.txt").read_text() == "keep me" and len(list(other.iterdir())) == 1


def test_empty_dataset_and_mask_outside_vocab(recipe, tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(ValueError, match="no .txt|empty"):
        recipe.train(TINY + ["--output_dir", str(tmp_path / "a"), "--dataset", str(empty)])
    from mdlm.training.build import check_model_fits
    from mdlm.modeling import MDLMConfig, MDLMForMaskedLM
    from mdlm.tokenizers import train_bpe

    tok = train_bpe(["hello world"] * 50, vocab_size=300)
    small = MDLMForMaskedLM(MDLMConfig(vocab_size=2, hidden_size=8, num_attention_heads=2, num_hidden_layers=1,
                                       intermediate_size=8))
    with pytest.raises(ValueError, match="mask id 2 lies outside the model's vocabulary"):
        check_model_fits(small, tok, 8)


def test_a_validation_that_scores_nothing_is_an_error_not_a_perfect_score(recipe, tmp_path):
    # 2 validation rows, eval batches of 64 and drop_last: the only batch is dropped, nothing is scored
    with pytest.raises(ValueError, match=r"the validation scored no tokens \(2 sequences; per_device_eval_batch_size "
                                         r"64 .*dataloader_drop_last drops a partial batch\)"):
        recipe.train(TINY + ["--output_dir", str(tmp_path / "run"), "--max_steps", "1", "--max_eval_sequences", "2",
                             "--dataloader_drop_last", "true", "--save_strategy", "no"])


def test_resuming_a_checkpoint_path_into_a_new_output_dir_is_an_error_not_a_fresh_start(recipe, tmp_path):
    elsewhere = tmp_path / "other" / "checkpoint-4"
    elsewhere.mkdir(parents=True)
    with pytest.raises(ValueError, match=r"--resume_from_checkpoint .*checkpoint-4 continues the run in --output_dir, "
                                         r"but .*new holds no run to continue"):
        recipe.train(TINY + ["--output_dir", str(tmp_path / "new"), "--resume_from_checkpoint", str(elsewhere)])
    assert not (tmp_path / "new").exists() or not any((tmp_path / "new").iterdir())
