"""What the image MDM's regularisation gives a user: ``--hflip`` doubles the training rows only, ``--dataset A,B``
adds a second set's images (no class, first-clause captions) and keeps A's validation split, the saved model is the
best checkpoint by validation ELBO, and a missing data file is one clear error."""

from __future__ import annotations

import io
import logging
import sys
from contextlib import redirect_stdout
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from safetensors.torch import load_file
from transformers import TrainerCallback

import mdlm  # noqa: F401
from mdlm.cli import UserError
from mdlm.data.image_augment import DEFAULT_HFLIP_SKIP, mirror_mask
from mdlm.data.text_image import (
    TextImageLayout,
    decode_captions,
    train_caption_tokenizer,
)
from mdlm.data.text_image_data import encode_captioned
from mdlm.data.text_image_mix import (
    CaptionedImages,
    first_clause,
    load_sets,
    mirrored,
    mixture,
)
from mdlm.tokenizers.image import VQModelForImages

sys.path.insert(0, str(Path(__file__).parent))
from rgb_fixtures import make_rgb_folder, random_rgb_vq
from scripts import load_script

ROOT = Path(__file__).resolve().parents[1]


def _recipe():
    return load_script("recipes/train_image.py")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    base = tmp_path_factory.mktemp("mix")
    return SimpleNamespace(base=base, a=make_rgb_folder(base / "a", per_class=4),
                           b=make_rgb_folder(base / "b", per_class=3, seed=1), vq=random_rgb_vq(base / "vq"))


def _argv(d, out: str, *extra: str) -> list[str]:
    return ["--vq_model", str(d.vq), "--dataset", f"imagefolder:{d.a}", "--image_size", "64", "--channels", "3",
            "--captions", "true", "--text_budget", "4", "--caption_vocab_size", "300", "--output_dir",
            str(d.base / out), "--hidden_size", "32", "--num_hidden_layers", "1", "--num_attention_heads", "2",
            "--intermediate_size", "64", "--max_steps", "8", "--torch_num_threads", "1",
            "--per_device_train_batch_size", "4", "--learning_rate", "0.01", "--warmup_steps", "0",
            "--weighting", "maskgit", "--eval_num_samples", "1", "--save_strategy", "no", "--sample_on_end", "0",
            "--report_to", "none", "--use_cpu", "true", "--disable_tqdm", "true", "--dataloader_num_workers", "0",
            "--seed", "0", *extra]


class LaterEvalsLookWorse(TrainerCallback):
    """Adds 1 nat per step to the ELBO the trainer ranks checkpoints by (the logged value stays true): the
    situation of an overfitting run, where the first evaluation is the best."""

    def on_evaluate(self, args, state, control, metrics=None, **kw):
        metrics["eval_nll"] += 1.0 * state.global_step


@pytest.fixture(scope="module")
def best_run(data):
    best = ["--eval_strategy", "steps", "--eval_steps", "2", "--save_strategy", "best", "--save_total_limit", "1",
            "--load_best_model_at_end", "true", "--metric_for_best_model", "nll", "--greater_is_better", "false",
            "--hflip", "true"]
    seen = _Records()
    log = logging.getLogger("transformers.trainer")
    log.addHandler(seen)
    try:
        with redirect_stdout(io.StringIO()):
            trainer = _recipe().train(_argv(data, "best", *best), callbacks=(LaterEvalsLookWorse(),))
    finally:
        log.removeHandler(seen)
    return SimpleNamespace(trainer=trainer, out=data.base / "best", warnings=seen.messages)


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record):
        self.messages.append(record.getMessage())


# ---- horizontal flips ----------------------------------------------------------------------------------


def test_mirrored_appends_the_flipped_images_except_captions_that_name_a_side():
    x = torch.arange(2 * 3 * 2 * 4, dtype=torch.float32).reshape(2, 3, 2, 4)  # (N, C, H, W)
    rows = CaptionedImages(x, torch.tensor([0, 1]), ["red apple", "leftwards arrow"], torch.tensor([False, True]))
    out = mirrored(rows, DEFAULT_HFLIP_SKIP)
    assert len(out) == 3 and out.captions == ["red apple", "leftwards arrow", "red apple"]
    assert torch.equal(out.pixels[2], x[0].flip(-1)) and out.labels.tolist() == [0, 1, 0]
    assert out.added.tolist() == [False, True, False]
    assert mirror_mask(["Flag: Japan", "rightwards hand", "cat"], 3, DEFAULT_HFLIP_SKIP).tolist() == [False, False, True]
    assert len(mirrored(rows, "")) == 4  # an empty pattern mirrors every image


def test_hflip_doubles_the_training_rows_and_leaves_validation_alone(data, best_run):
    dd = load_sets(f"imagefolder:{data.a}", None, 3)[0]
    trainer = best_run.trainer
    assert len(trainer.train_dataset) == 2 * len(dd["train"])
    assert len(trainer.eval_dataset) == len(dd["test"])
    rows = trainer.train_dataset.input_ids  # (2N, L): the images, then their mirrors with the same prefix
    n, prefix = len(dd["train"]), trainer.model.config.image_layout["text_budget"] + 1
    assert torch.equal(rows[:n, :prefix], rows[n:, :prefix])


# ---- the best checkpoint ---------------------------------------------------------------------------------


def test_the_saved_model_is_the_best_checkpoint_not_the_last_step(best_run):
    trainer, out = best_run.trainer, best_run.out
    evals = [h for h in trainer.state.log_history if "eval_nll" in h]
    assert [h["step"] for h in evals] == [2, 4, 6, 8] and trainer.state.best_global_step == 2
    final = load_file(out / "model.safetensors")
    best = load_file(out / "checkpoint-2" / "model.safetensors")
    assert final.keys() == best.keys() and all(torch.equal(final[k], best[k]) for k in final)
    import json

    shipped = json.loads((out / "eval_metrics.json").read_text())
    assert shipped["eval_best_step"] == 2 and shipped["eval_nll"] == evals[0]["eval_nll"]
    trainer.remove_callback(LaterEvalsLookWorse)
    assert trainer.evaluate()["eval_nll"] == pytest.approx(evals[0]["eval_nll"], rel=1e-5)  # the weights in memory too
    # the LM head (tied to the embedding, stored once) is re-tied on reload, with no "missing keys" warning
    model = trainer.model
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    assert not [m for m in best_run.warnings if "missing keys" in m], best_run.warnings


# ---- several data sets -----------------------------------------------------------------------------------


def test_first_clause_cuts_sentences_at_their_first_break():
    assert first_clause("An albino peahen (a female peafowl, or peacock)") == "An albino peahen"
    assert first_clause("Tux—the Linux mascot!") == "Tux"
    assert first_clause("red apple") == "red apple" and first_clause("(untitled)") == "(untitled)"


def test_an_added_set_trains_without_class_and_keeps_the_first_sets_validation(data):
    sets = load_sets(f"imagefolder:{data.a},imagefolder:{data.b}", None, 3)
    splits, names = mixture(sets)
    a, b = sets
    assert names == ["circle", "square"]
    assert len(splits["train"]) == len(a["train"]) + len(b["train"]) + len(b["test"])
    assert len(splits["test"]) == len(a["test"])
    added = splits["train"].added
    assert (splits["train"].labels[added] == -1).all() and (splits["train"].labels[~added] >= 0).all()
    tok = train_caption_tokenizer(splits["train"].captions, 300)
    vq = VQModelForImages.from_pretrained(data.vq)
    tokens = encode_captioned(vq, splits, names, tok, 4)
    lay: TextImageLayout = tokens.layout
    seq = tokens.splits["train"]  # (N, 1 + 4 + 256)
    assert (seq[added, 0] == lay.mask_id).all() and (seq[~added, 0] < lay.text_offset).all()
    assert [c.strip() for c in decode_captions(tok, seq, lay)] == splits["train"].captions


def test_a_missing_data_file_is_one_clear_error(data, tmp_path):
    with pytest.raises(ValueError, match=r"missing\.npz: no such file"):
        load_sets(f"imagefolder:{data.a},{tmp_path}/missing.npz", None, 3)
    with pytest.raises(UserError, match=r"missing\.npz: no such file"), redirect_stdout(io.StringIO()):
        _recipe().train(_argv(data, "bad", "--dataset", f"imagefolder:{data.a},{tmp_path}/missing.npz"))
    with pytest.raises(UserError, match="need --captions true"), redirect_stdout(io.StringIO()):
        _recipe().train(_argv(data, "bad2", "--captions", "false", "--dataset",
                              f"imagefolder:{data.a},imagefolder:{data.b}"))


def test_a_lower_is_better_best_metric_without_its_direction_is_refused(data):
    # transformers takes "nll" as higher-is-better unless told: the run would ship its worst checkpoint
    with pytest.raises(UserError, match="greater_is_better false"), redirect_stdout(io.StringIO()):
        _recipe().train(_argv(data, "best", "--save_strategy", "best", "--load_best_model_at_end", "true",
                              "--metric_for_best_model", "nll", "--greater_is_better", "true"))
