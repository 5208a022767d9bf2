"""Text- and class-conditioned image MDM: the one-vocabulary layout, caption/class dropout, training on a generated
folder of captioned RGB images (tests/rgb_fixtures.py), CFG with the mask token, and generate.py --prompt."""

from __future__ import annotations

import io
import json
import sys
from contextlib import redirect_stdout
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

import mdlm  # noqa: F401
from mdlm.data.images import load_image_folder
from mdlm.data.text_image import (
    TextImageLayout,
    caption_token_ids,
    decode_captions,
    text_image_sequences,
    train_caption_tokenizer,
)
from mdlm.data.text_image_data import TextImageCollator, TextImageRows, load_captioned

sys.path.insert(0, str(Path(__file__).parent))
from rgb_fixtures import make_rgb_folder, random_rgb_vq
from scripts import load_script, run_main

ROOT = Path(__file__).resolve().parents[1]
CAPTIONS = ["red circle", "blue square", "green circle", "red square"]




@pytest.fixture(scope="module")
def tok():
    return train_caption_tokenizer(CAPTIONS * 3, vocab_size=300)


def _layout(tok, budget: int = 6) -> TextImageLayout:
    return TextImageLayout.from_tokenizer(tok, codebook_size=16, num_classes=2, text_budget=budget)


# ---- the layout --------------------------------------------------------------------------------------


def test_layout_ranges_are_disjoint_and_specials_come_from_the_tokenizer(tok):
    lay = _layout(tok)
    assert lay.mask_id == lay.text_offset + tok.mask_token_id and lay.pad_id == lay.text_offset + tok.pad_token_id
    assert lay.class_token_ids == [16, 17] and lay.text_offset == 18 and lay.vocab_size == 18 + len(tok)
    assert set(lay.suppress_ids) == set(range(16, lay.vocab_size))  # never sampled at an image position
    assert TextImageLayout.from_dict(lay.to_dict()) == lay
    with pytest.raises(ValueError, match="mask_id"):
        TextImageLayout.from_dict({**lay.to_dict(), "mask_id": 3})


def test_sequences_round_trip_codes_labels_and_captions(tok):
    lay = _layout(tok)
    codes = torch.randint(0, 16, (4, 4, 4))  # (N, h, w)
    labels = torch.tensor([0, 1, -1, 1])
    caps = ["red circle", "blue square", "", "green circle"]
    seq = text_image_sequences(codes, labels, caption_token_ids(tok, caps, lay), lay)  # (N, 1 + 6 + 16)
    assert seq.shape == (4, lay.prefix_len + 16)
    got_labels, got_codes = lay.split(seq)
    assert got_labels.tolist() == labels.tolist() and torch.equal(got_codes, codes.reshape(4, -1))
    assert [c.strip() for c in decode_captions(tok, seq, lay)] == caps
    assert (seq[2, : lay.prefix_len] == lay.mask_id).all()  # no class, no caption = the null condition
    with pytest.raises(ValueError, match="still masked"):
        lay.split(seq.masked_fill(torch.arange(seq.shape[1]) == lay.prefix_len, lay.mask_id))


def test_caption_longer_than_the_budget_is_one_clear_error(tok):
    lay = _layout(tok, budget=2)
    with pytest.raises(ValueError, match=r"caption 'red circle blue square' is \d+ tokens, longer than the text "
                                         r"budget of 2 \(shorten the caption; the budget is fixed when the model is trained"):
        caption_token_ids(tok, ["red", "red circle blue square"], lay)


def test_collator_drops_class_or_caption_alone_on_training_rows_only(tok):
    lay = _layout(tok)
    seq = text_image_sequences(torch.zeros(1, 4, 4, dtype=torch.long), torch.tensor([1]),
                               caption_token_ids(tok, ["red circle"], lay), lay).repeat(2000, 1)
    collate = TextImageCollator(lay, class_dropout=0.2, caption_dropout=0.3, seed=0)
    train = collate([TextImageRows(seq, lay, droppable=True)[i] for i in range(len(seq))])["input_ids"]
    class_gone = train[:, 0] == lay.mask_id
    caption_gone = (train[:, 1 : lay.prefix_len] == lay.mask_id).all(1)
    assert abs(class_gone.float().mean() - 0.2) < 0.04 and abs(caption_gone.float().mean() - 0.3) < 0.04
    assert not (class_gone & caption_gone).any()  # one part at a time (both at once: the trainer's cond_dropout)
    assert torch.equal(train[:, lay.prefix_len:], seq[:, lay.prefix_len:])  # image codes untouched
    evald = collate([TextImageRows(seq[:50], lay, droppable=False)[i] for i in range(50)])
    assert torch.equal(evald["input_ids"], seq[:50])
    assert not evald["eligible"][:, : lay.prefix_len].any() and evald["eligible"][:, lay.prefix_len:].all()


# ---- a tiny model trained on the generated folder ----------------------------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    base = tmp_path_factory.mktemp("t2i")
    folder = make_rgb_folder(base / "folder", per_class=6)
    vq = random_rgb_vq(base / "vq")
    recipe = load_script("recipes/train_image.py")
    argv = ["--vq_model", str(vq), "--dataset", f"imagefolder:{folder}", "--image_size", "64", "--channels", "3",
            "--captions", "true", "--text_budget", "4", "--caption_vocab_size", "300", "--output_dir",
            str(base / "run"), "--hidden_size", "32", "--num_hidden_layers", "1", "--num_attention_heads", "2",
            "--intermediate_size", "64", "--max_steps", "24", "--torch_num_threads", "1", "--per_device_train_batch_size", "10",
            "--learning_rate", "0.01", "--warmup_steps", "0", "--schedule", "linear", "--weighting", "maskgit",
            "--t_min", "0.5", "--logging_steps", "1", "--eval_num_samples", "1", "--save_strategy", "no",
            "--sample_on_end", "0", "--report_to", "none", "--use_cpu", "true", "--disable_tqdm", "true",
            "--dataloader_num_workers", "0", "--seed", "0"]
    buf = io.StringIO()
    with redirect_stdout(buf):
        trainer = recipe.train(argv)
    return SimpleNamespace(out=base / "run", folder=folder, trainer=trainer, printed=buf.getvalue())


def test_captioned_folder_loads_rgb_with_captions(trained):
    dd = load_captioned(f"imagefolder:{trained.folder}", image_size=None, channels=3)  # 64 px by default
    assert dd["train"].features["label"].names == ["circle", "square"]
    assert len(dd["train"][0]["pixel_values"]) == 3 and len(dd["train"]) + len(dd["test"]) == 12
    caps = set(dd["train"]["caption"]) | set(dd["test"]["caption"])
    assert caps <= {f"{c} {s}" for c in ("red", "blue", "green") for s in ("circle", "square")}


def test_a_tiny_model_trains_on_the_folder_and_its_loss_falls(trained):
    losses = [h["loss"] for h in trained.trainer.state.log_history if "loss" in h]
    assert len(losses) == 24
    first, last = sum(losses[:6]) / 6, sum(losses[-6:]) / 6
    assert last < 0.8 * first, (first, last)
    cfg = json.loads((trained.out / "config.json").read_text())
    assert cfg["image_layout"]["kind"] == "text_image" and cfg["image_layout"]["latent_shape"] == [16, 16]
    assert cfg["max_position_embeddings"] == 1 + 4 + 256
    assert (trained.out / "caption_tokenizer" / "tokenizer.json").is_file() and (trained.out / "vq").is_dir()


@pytest.fixture(scope="module")
def loaded(trained):
    from mdlm.pipelines import load_for_generation
    from mdlm.pipelines.image import image_model_info, load_image_vq
    from mdlm.pipelines.text_image import load_caption_tokenizer

    lo = load_for_generation(str(trained.out))
    info = image_model_info(lo.model.config)
    return SimpleNamespace(model=lo.model, info=info, vq=load_image_vq(str(trained.out), info),
                           tok=load_caption_tokenizer(str(trained.out), info))


def _sample(loaded, prompts, classes, cfg: float, seed: int = 0, model=None):
    from mdlm.pipelines.image import generate_conditioned
    from mdlm.pipelines.text_image import condition_rows
    from mdlm.sampling import MDLMGenerationConfig

    rows = condition_rows(loaded.info, loaded.tok, prompts, classes, num_samples=3)
    config = MDLMGenerationConfig(steps=4, schedule="cosine", temperature=1.0, guidance_scale=cfg)
    return generate_conditioned(model or loaded.model, loaded.info.layout, loaded.vq, rows.labels, rows.captions,
                                config, torch.Generator().manual_seed(seed))


def test_cfg_with_an_empty_caption_equals_the_unconditional_model(loaded):
    empty = _sample(loaded, [""], None, cfg=3.0)
    uncond = _sample(loaded, None, None, cfg=0.0)
    assert torch.equal(empty.sequences, uncond.sequences) and empty.images.shape == (3, 3, 64, 64)
    # and the unconditional pass that guides a captioned row sees exactly that all-[MASK] prefix
    seen = []

    def spy(x, attention_mask=None):
        seen.append(x[:, : loaded.info.layout.prefix_len].clone())
        return loaded.model(input_ids=x, attention_mask=attention_mask)

    spy.config = loaded.model.config
    guided = _sample(loaded, ["red circle"], [0], cfg=3.0, model=spy)
    prefixes = torch.cat(seen)  # (passes · B, P)
    null = prefixes == loaded.info.layout.mask_id
    assert null.all(1).any() and (~null).all(1).any()  # conditional and all-[MASK] unconditional passes
    assert not torch.equal(guided.sequences, empty.sequences)


def _generate_cli(monkeypatch, capsys, *args):
    code, out, err = run_main(monkeypatch, capsys, "recipes/generate.py", *args)
    return code, out.strip().splitlines(), err.strip().splitlines()


def test_generate_prompt_writes_a_png_grid(trained, tmp_path, monkeypatch, capsys):
    from PIL import Image

    grid = tmp_path / "apples.png"
    code, _, err = _generate_cli(monkeypatch, capsys, "--model", str(trained.out), "--prompt", "red circle",
                                   "--prompt", "blue square", "--class", "circle", "--num-samples", "2", "--steps", "2",
                                   "--cfg-scale", "1", "--cfg-interval", "0", "0.6", "--out", str(grid), "--save-steps",
                                   "--samples-npz", str(tmp_path / "apples.npz"), "--device", "cpu")
    assert code == 0, err
    assert Image.open(grid).format == "PNG" and (tmp_path / "apples_steps.png").is_file()
    assert any('4 images (circle | "red circle", circle | "blue square"), 2 steps' in line for line in err)
    import numpy as np

    with np.load(tmp_path / "apples.npz") as z:  # the prompts travel with the images (eval/fid.py --captions-from)
        assert z["images"].shape[0] == 4 and list(z["captions"]) == ["red circle"] * 2 + ["blue square"] * 2
    code, _, err = _generate_cli(monkeypatch, capsys, "--model", str(trained.out), "--prompt", "red circle " * 5,
                                 "--out", str(tmp_path / "x.png"), "--device", "cpu")
    assert code == 2 and len(err) == 1 and err[0].startswith("error: caption") and "text budget of 4" in err[0]
    assert not (tmp_path / "x.png").exists()
    code, _, err = _generate_cli(monkeypatch, capsys, "--model", str(trained.out), "--class-id", "all", "--steps", "2",
                                 "--num-samples", "1", "--out", str(tmp_path / "classes.png"), "--device", "cpu")
    assert code == 0 and (tmp_path / "classes.png").is_file(), err  # class rows: caption slots stay [MASK]
    code, _, err = _generate_cli(monkeypatch, capsys, "--model", str(trained.out), "--class", "triangle",
                                 "--out", str(tmp_path / "y.png"), "--device", "cpu")
    assert code == 2 and err == ["error: --class 'triangle' is not a class of this model (its classes: circle, square)"]


def test_caption_ablation_scores_one_image_per_caption_with_nfe(trained, loaded):
    from mdlm.evaluation.ablation.captions import caption_ablation, caption_markdown
    from mdlm.evaluation.ablation.grid import Images
    from mdlm.evaluation.classifier import ImageClassifierCNN, ImageClassifierConfig
    from mdlm.evaluation.image_scoring import ImageCheckpoint, ImageScorer

    torch.manual_seed(0)
    clf = ImageClassifierCNN(ImageClassifierConfig(in_channels=3, image_size=64, num_classes=2, channels=[4, 4])).eval()
    data = load_image_folder(str(trained.folder), image_size=64, channels=3, test_fraction=0.5, cache_dir="")
    scorer = ImageScorer(clf, data, batch_size=16, dataset="shapes")
    ckpt = ImageCheckpoint(str(trained.out), loaded.model, loaded.info, loaded.vq, {"steps": 2}, torch.device("cpu"))
    res = caption_ablation(ckpt, scorer, Images(classifier="-", batch_size=16), steps=[2], scales=[0.0, 2.0],
                           interval=[0.0, 1.0], num_captions=3, k=2, seed=0, log=lambda s: None)
    assert [(r["steps"], r["cfg_scale"], r["nfe"]) for r in res["rows"]] == [(2, 0.0, 2), (2, 2.0, 4)]
    assert all(r["n_images"] == res["num_captions"] == 3 and 0 <= r["category_match"] <= 1 for r in res["rows"])
    assert len(set(res["examples"])) == 3 and res["chance"]["category_match"] == 0.5
    assert caption_markdown(res).count("\n| 2 |") == 2


def test_grid_checks_the_captions_section(tmp_path):
    from mdlm.cli import UserError
    from mdlm.evaluation.ablation.grid import load_grid

    grid = tmp_path / "g.yaml"
    grid.write_text("images: {classifier: c, model: m}\ncaptions: {steps: [8], scales: [0, 1], k: 10}\n")
    g = load_grid(str(grid))
    assert g.parts() == ["captions"] and g.captions.num_captions == 300 and g.captions.scales == [0.0, 1.0]
    with pytest.raises(UserError, match="k ≥ 2"):
        load_grid(str(grid), ["captions.k=1"])
