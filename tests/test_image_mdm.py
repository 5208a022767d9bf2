"""Class-conditional image MDM: recipes/train_image.py end to end on 8×8 digits with a tiny random VQ,
the image pipeline on the shared sampler, label dropout, CFG condition, CLI and eval. CPU, seconds each."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import mdlm
from mdlm.cli import UserError
from mdlm.data.images import ImageTokenLayout
from mdlm.sampling import SamplerConfig
from mdlm.tokenizers.image import VQConfig, VQModelForImages

sys.path.insert(0, str(Path(__file__).parent))
from scripts import load_script, run_main

ROOT = Path(__file__).resolve().parents[1]
CODES, CLASSES = 16, 10  # the fixture VQ's codebook; sklearn digits' classes
LAYOUT = ImageTokenLayout(CODES, CLASSES)




def _random_vq(path: Path, codebook_size: int = CODES, seed: int = 0) -> Path:
    """An untrained 8×8 → 4×4 VQ (random codebook): enough for plumbing and shapes."""
    torch.manual_seed(seed)
    cfg = VQConfig(image_size=8, hidden_channels=[8], num_res_blocks=1, embedding_dim=4, codebook_size=codebook_size)
    VQModelForImages(cfg).save_pretrained(path)
    return path


def _argv(vq: Path, out: Path, cache: Path, *extra: str) -> list[str]:
    return [
        "--vq_model", str(vq), "--dataset", "digits", "--cache_dir", str(cache), "--output_dir", str(out),
        "--hidden_size", "32", "--num_hidden_layers", "1", "--num_attention_heads", "2",
        "--schedule", "exp", "--weighting", "maskgit", "--t_min", "0.2",
        "--per_device_train_batch_size", "32", "--per_device_eval_batch_size", "128", "--max_eval_samples", "128",
        "--eval_num_samples", "1", "--learning_rate", "0.003", "--logging_steps", "2", "--report_to", "none",
        "--use_cpu", "true", "--disable_tqdm", "true", "--seed", "0", "--dataloader_num_workers", "0", *extra,
    ]


@pytest.fixture(scope="module")
def recipe():
    return load_script("recipes/train_image.py")


@pytest.fixture(scope="module")
def trained(recipe, tmp_path_factory):
    """One tiny image MDM trained 6 steps (validation every 3) — shared by the tests below."""
    import io
    from contextlib import redirect_stdout

    base = tmp_path_factory.mktemp("image_mdm")
    vq = _random_vq(base / "vq")
    out = base / "run"
    buf = io.StringIO()
    with redirect_stdout(buf):
        trainer = recipe.train(_argv(vq, out, base / "cache", "--max_steps", "6", "--eval_strategy", "steps",
                                     "--eval_steps", "3", "--save_strategy", "no", "--sample_on_end", "1"))
    return SimpleNamespace(out=out, vq=vq, cache=base / "cache", base=base, trainer=trainer, printed=buf.getvalue())


@pytest.fixture(scope="module")
def loaded(trained):
    from mdlm.pipelines import load_for_generation
    from mdlm.pipelines.image import image_model_info, load_image_vq

    lo = load_for_generation(str(trained.out))
    info = image_model_info(lo.model.config)
    return SimpleNamespace(model=lo.model, info=info, vq=load_image_vq(str(trained.out), info), defaults=lo.defaults)


# ----------------------------------------------------------------------------------------------
# the recipe


@pytest.mark.requires("sklearn")  # scikit-learn's digits
def test_recipe_writes_a_self_contained_image_checkpoint(trained):
    from transformers import AutoModelForMaskedLM

    out = trained.out
    for f in ["config.json", "model.safetensors", "generation_config.json", "eval_metrics.json", "samples.png",
              "vq/config.json", "vq/model.safetensors", "log_history.json"]:
        assert (out / f).is_file(), f
    assert not list(out.glob("*.bin")) and (out / "training_args.json").is_file()  # no pickled objects written
    model = AutoModelForMaskedLM.from_pretrained(out)  # after `import mdlm`
    assert isinstance(model, mdlm.MDLMForMaskedLM)
    cfg = model.config
    assert cfg.image_layout == {**LAYOUT.to_dict(), "latent_shape": [4, 4]}
    assert cfg.mask_token_id == LAYOUT.mask_id and cfg.vocab_size >= LAYOUT.vocab_size
    assert cfg.max_position_embeddings == 1 + 4 * 4
    assert cfg.image_class_names == [str(i) for i in range(CLASSES)]
    recipe_mod = load_script("recipes/train_image.py")
    assert cfg.image_vq["sha256"] == recipe_mod.vq_sha256(str(out / "vq")) == recipe_mod.vq_sha256(str(trained.vq))
    # periodic validation ELBO on the test split, and the final one reported (bits/token, perplexity)
    evals = [h["step"] for h in trained.trainer.state.log_history if "eval_nll" in h]
    assert evals[:2] == [3, 6]
    final = json.loads((out / "eval_metrics.json").read_text())
    assert 0 < final["eval_nll"] < 10 and final["eval_tokens"] == 128 * 16
    assert "validation ELBO" in trained.printed and "samples:" in trained.printed
    gen = json.loads((out / "generation_config.json").read_text())
    assert gen["mask_token_id"] == LAYOUT.mask_id and gen["steps"] >= 1


@pytest.mark.requires("sklearn")  # scikit-learn's digits
def test_token_cache_is_reused_and_keyed_by_the_vq(recipe, trained, capsys):
    dargs = recipe.ImageDataArguments(vq_model=str(trained.vq), dataset="digits", cache_dir=str(trained.cache))
    digest = recipe.vq_sha256(str(trained.vq))
    assert len(list(trained.cache.iterdir())) == 1
    vq = VQModelForImages.from_pretrained(trained.vq)
    tokens = recipe.token_dataset(dargs, vq, digest, torch.device("cpu"), verbose=True)
    assert "cached" in capsys.readouterr().out
    ids = np.asarray(tokens["train"].with_format("numpy")["input_ids"])
    assert ids.shape[1] == 17 and (ids[:, 0] >= CODES).all() and (ids[:, 1:] < CODES).all()
    other = recipe.cache_path(dargs, "0" * 64)
    assert other != recipe.cache_path(dargs, digest)  # another VQ → another cache entry


@pytest.mark.requires("sklearn")  # scikit-learn's digits
def test_hflip_doubles_the_cached_training_split_only(recipe, trained):
    from mdlm.data.image_tokens import mirrored_split

    dargs = recipe.ImageDataArguments(vq_model=str(trained.vq), dataset="digits", cache_dir=str(trained.cache))
    digest = recipe.vq_sha256(str(trained.vq))
    assert recipe.cache_path(dargs, digest, hflip=True) != recipe.cache_path(dargs, digest)  # its own cache entry
    vq = VQModelForImages.from_pretrained(trained.vq)
    plain = recipe.token_dataset(dargs, vq, digest, torch.device("cpu"), verbose=False)
    flipped = recipe.token_dataset(dargs, vq, digest, torch.device("cpu"), verbose=False, hflip=True)
    assert len(flipped["train"]) == 2 * len(plain["train"]) and len(flipped["test"]) == len(plain["test"])
    assert flipped["train"]["label"][::2] == flipped["train"]["label"][1::2] == plain["train"]["label"]
    images = recipe.load_images(dargs)["train"].select(range(3))
    pairs = np.asarray(mirrored_split(images).with_format("numpy")["pixel_values"])  # (6, 1, 8, 8)
    assert np.array_equal(pairs[1::2], pairs[::2][..., ::-1]) and not np.array_equal(pairs[1], pairs[0])


@pytest.mark.requires("sklearn")  # scikit-learn's digits
def test_codebook_mismatch_errors_name_both_sizes(recipe, trained, tmp_path):
    from mdlm.pipelines.image import image_model_info, load_image_vq

    big = _random_vq(tmp_path / "vq32", codebook_size=32)
    # continuing training from the 16-code checkpoint with a 32-code VQ
    with pytest.raises(ValueError, match=r"32 codes.*expects 16"):
        recipe.train(_argv(big, tmp_path / "run", tmp_path / "cache", "--model_name_or_path", str(trained.out),
                           "--max_steps", "1"))
    assert not (tmp_path / "run").exists()  # refused before writing anything
    # a checkpoint whose vq/ was swapped
    ckpt = tmp_path / "ckpt"
    shutil.copytree(trained.out, ckpt)
    shutil.rmtree(ckpt / "vq")
    shutil.copytree(big, ckpt / "vq")
    from transformers import AutoConfig

    with pytest.raises(ValueError, match=r"32 codes.*expects 16"):
        load_image_vq(str(ckpt), image_model_info(AutoConfig.from_pretrained(ckpt)))


def test_missing_vq_is_a_user_error(recipe, tmp_path):
    with pytest.raises(UserError, match="--vq_model"):
        recipe.train(["--dataset", "digits", "--output_dir", str(tmp_path / "x"), "--use_cpu", "true"])


# ----------------------------------------------------------------------------------------------
# label dropout


@pytest.mark.requires("sklearn")  # scikit-learn's digits
def test_label_dropout_rate_matches_cond_dropout(trained):
    """compute_loss replaces the class token by [MASK] in a share ≈ cond_dropout of the rows and never
    masks it otherwise. N = 4000 rows, p = 0.1: binomial sd = √(p(1−p)/N) ≈ 0.0047; tolerance 0.02 (> 4 sd)."""
    from mdlm.training import MDMCollator

    recipe_mod = load_script("recipes/train_image.py")
    trainer = trained.trainer
    assert trainer.diff.cond_dropout == pytest.approx(0.1)  # the image recipe's default
    labels = torch.arange(4000) % CLASSES
    ids = torch.cat([(labels + CODES)[:, None], torch.randint(0, CODES, (4000, 16))], dim=1)  # (N, 17)
    rows = recipe_mod.ImageTokenRows(ids)
    batch = MDMCollator(pad_token_id=LAYOUT.mask_id)([rows[i] for i in range(len(rows))])
    seen = []

    class Spy(torch.nn.Module):
        def forward(self, input_ids, attention_mask=None):
            seen.append(input_ids.clone())
            return SimpleNamespace(logits=torch.zeros(*input_ids.shape, 64))

    trainer.compute_loss(Spy(), batch)
    x = seen[0][:, 0]  # (N,) the class position as the network saw it
    dropped = x == LAYOUT.mask_id
    assert abs(float(dropped.float().mean()) - 0.1) < 0.02
    assert torch.equal(x[~dropped], ids[~dropped, 0])  # kept rows: the class token, never masked


# ----------------------------------------------------------------------------------------------
# the pipeline on the shared sampler


@pytest.mark.requires("sklearn")  # scikit-learn's digits
def test_tokens_to_sampler_to_pixels_shapes(loaded):
    from mdlm.pipelines.image import generate_images

    g = torch.Generator().manual_seed(0)
    cfg = SamplerConfig(steps=4, cfg_scale=1.5, temperature=1.0)
    out = generate_images(loaded.model, loaded.info.layout, loaded.vq, [0, 3], 2, cfg, g)
    assert out.images.shape == (4, 1, 8, 8) and out.images.dtype == torch.float32
    assert float(out.images.abs().max()) <= 1.0
    assert out.labels.tolist() == [0, 0, 3, 3]
    assert out.sequences.shape == (4, 17)
    assert out.sequences[:, 0].tolist() == [CODES + 0, CODES + 0, CODES + 3, CODES + 3]
    assert int(out.sequences[:, 1:].max()) < CODES  # only codes at image positions
    assert out.nfe == 8  # 4 steps × (conditional + unconditional)
    unc = generate_images(loaded.model, loaded.info.layout, loaded.vq, None, 3, cfg, torch.Generator().manual_seed(0),
                          batch_size=2)
    assert unc.images.shape == (3, 1, 8, 8) and (unc.sequences[:, 0] == LAYOUT.mask_id).all()
    assert unc.labels.tolist() == [-1, -1, -1]
    again = generate_images(loaded.model, loaded.info.layout, loaded.vq, [0, 3], 2, cfg, torch.Generator().manual_seed(0))
    assert torch.equal(again.sequences, out.sequences)  # deterministic given the seed


@pytest.mark.requires("sklearn")  # scikit-learn's digits
def test_class_token_is_the_cfg_condition_and_never_changes(loaded):
    from mdlm.pipelines.image import generate_images

    calls = []

    def fn(x, attention_mask=None):  # logits of the trained model, and a record of what it saw
        calls.append(x.clone())
        return loaded.model(input_ids=x).logits

    fn.config = loaded.model.config  # so the pipeline suppresses the padded vocabulary too
    cfg = SamplerConfig(steps=4, cfg_scale=2.0, return_history=True, remask_committed=0.3)
    classes = [1, 5, 9]
    out = generate_images(fn, loaded.info.layout, loaded.vq, classes, 2, cfg, torch.Generator().manual_seed(1),
                          device="cpu")
    want = torch.tensor([c + CODES for c in classes]).repeat_interleave(2)
    assert len(out.history) == 5
    for frame in out.history:  # the committed class token never changes, in any step
        assert torch.equal(frame[:, 0], want)
    for x in calls:  # batched CFG: conditional half sees the class, unconditional half [MASK]
        B = x.shape[0] // 2
        assert torch.equal(x[:B, 0], want) and (x[B:, 0] == LAYOUT.mask_id).all()
        assert torch.equal(x[:B, 1:], x[B:, 1:])


@pytest.mark.requires("sklearn")  # scikit-learn's digits
def test_image_and_text_pipelines_call_the_same_sampler(loaded, monkeypatch):
    import mdlm.pipelines.image as image_pipe
    import mdlm.pipelines.text as text_pipe
    import mdlm.sampling as sampling

    assert image_pipe.generate is text_pipe.generate is sampling.generate
    original = sampling.generate
    callers = []

    def spy(*args, **kwargs):
        callers.append(sys._getframe(1).f_globals["__name__"])
        return original(*args, **kwargs)

    monkeypatch.setattr(image_pipe, "generate", spy)
    monkeypatch.setattr(text_pipe, "generate", spy)

    class CharTok:  # the least a text pipeline needs
        mask_token_id, pad_token_id, eos_token_id = 1, 0, 2

        def __call__(self, s, add_special_tokens=False):
            return {"input_ids": [3 + ord(c) % 20 for c in s]}

        def decode(self, ids, skip_special_tokens=True):
            return "".join(chr(97 + int(i) % 26) for i in ids)

    torch.manual_seed(0)
    text_model = mdlm.MDLMForMaskedLM(mdlm.MDLMConfig(vocab_size=32, hidden_size=16, intermediate_size=32,
                                                      num_hidden_layers=1, num_attention_heads=2,
                                                      max_position_embeddings=16, mask_token_id=1)).eval()
    texts, _ = text_pipe.generate_text(text_model, CharTok(), ["ab"], SamplerConfig(steps=2), 4)
    image_pipe.generate_images(loaded.model, loaded.info.layout, loaded.vq, [2], 1, SamplerConfig(steps=2),
                               torch.Generator().manual_seed(0))
    assert callers == ["mdlm.pipelines.text", "mdlm.pipelines.image"]
    assert len(texts) == 1


def test_canvas_and_class_id_errors():
    from mdlm.pipelines.image import build_image_canvas, parse_class_ids

    canvas, gen, cond = build_image_canvas(LAYOUT, torch.tensor([4, -1]), 16)
    assert canvas.shape == gen.shape == cond.shape == (2, 17)
    assert canvas[:, 0].tolist() == [CODES + 4, LAYOUT.mask_id] and (canvas[:, 1:] == LAYOUT.mask_id).all()
    assert gen[:, 0].tolist() == [False, False] and gen[:, 1:].all()
    assert cond[:, 0].tolist() == [True, False] and not cond[:, 1:].any()
    with pytest.raises(ValueError, match="labels must lie in"):
        build_image_canvas(LAYOUT, torch.tensor([CLASSES]), 16)
    assert parse_class_ids(["all"], 3) == [0, 1, 2] and parse_class_ids(["2", "0"], 3) == [2, 0]
    assert parse_class_ids(None, 3) is None
    with pytest.raises(UserError, match=r"--class-id 3 is out of range: this model has 3 classes"):
        parse_class_ids(["3"], 3)
    with pytest.raises(UserError, match="integer or 'all'"):
        parse_class_ids(["shoe"], 3)


# ----------------------------------------------------------------------------------------------
# recipes/generate.py and eval/image_sample_eval.py


def _generate_cli(monkeypatch, capsys, *args) -> tuple[int, list[str], list[str]]:
    """recipes/generate.py's main() in this process (same entry point as the command line, without
    paying the interpreter start-up): exit code, stdout lines, stderr lines."""
    code, out, err = run_main(monkeypatch, capsys, "recipes/generate.py", *args)
    return code, out.strip().splitlines(), err.strip().splitlines()


@pytest.mark.requires("sklearn")  # scikit-learn's digits
def test_generate_cli_writes_grid_strip_and_npz(trained, tmp_path, monkeypatch, capsys):
    from PIL import Image

    grid, strip, npz = tmp_path / "grid.png", tmp_path / "strip.png", tmp_path / "s.npz"
    code, out, err = _generate_cli(monkeypatch, capsys, "--model", str(trained.out), "--class-id", "all",
                                   "--num-samples", "2", "--steps", "4", "--cfg-scale", "1", "--out", str(grid),
                                   "--save-steps", str(strip), "--samples-npz", str(npz), "--device", "cpu")
    assert code == 0, err
    assert any("20 images (10 classes), 4 steps, 8 NFE" in line for line in err)
    assert f"wrote {grid} (grid)" in out and f"wrote {strip} (strip)" in out
    g, s = Image.open(grid), Image.open(strip)
    assert g.format == s.format == "PNG"
    assert g.size[1] > 10 * 8 * 2 and s.size[0] > 5 * 8 * 2  # 10 rows of 8-px tiles; 5 frames (steps 0..4)
    data = np.load(npz)
    assert data["images"].shape == (20, 1, 8, 8) and data["labels"].tolist() == [c for c in range(10) for _ in range(2)]
    # --save-steps without a path: OUT_steps.png next to the grid
    code, out, err = _generate_cli(monkeypatch, capsys, "--model", str(trained.out), "--num-samples", "3",
                                   "--steps", "2", "--out", str(tmp_path / "u.png"), "--save-steps", "--device", "cpu")
    assert code == 0, err
    assert (tmp_path / "u.png").is_file() and (tmp_path / "u_steps.png").is_file()  # unconditional


@pytest.mark.requires("sklearn")  # scikit-learn's digits
def test_generate_cli_errors_are_one_line_exit_2(trained, tmp_path, monkeypatch, capsys):
    existing = tmp_path / "grid.png"
    existing.write_bytes(b"keep")

    def run(*args):
        code, _, err = _generate_cli(monkeypatch, capsys, "--model", str(trained.out), "--device", "cpu", *args)
        return code, err

    code, err = run("--class-id", "10", "--out", str(tmp_path / "a.png"))
    assert code == 2 and err[-1] == "error: --class-id 10 is out of range: this model has 10 classes (0..9)"
    assert not (tmp_path / "a.png").exists()
    code, err = run("--class-id", "1", "--out", str(existing))
    assert code == 2 and "exists; pass --overwrite" in err[-1] and existing.read_bytes() == b"keep"
    code, err = run("--class-id", "1")
    assert code == 2 and "--out" in err[-1]
    code, err = run("--prompt", "a dress", "--out", str(tmp_path / "p.png"))  # no caption slots in a class-only model
    assert code == 2 and len(err) == 1 and "trained with --captions" in err[0] and not (tmp_path / "p.png").exists()
    code, err = run("--class-id", "1", "--num-samples", "2", "--steps", "2", "--out", str(existing), "--overwrite")
    assert code == 0 and existing.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.requires("sklearn")  # scikit-learn's digits
def test_sample_eval_reports_fid_and_accuracy_per_step_count(trained, tmp_path, capsys):
    from mdlm.evaluation.classifier import ImageClassifierCNN, ImageClassifierConfig

    torch.manual_seed(0)
    clf = tmp_path / "clf"
    ImageClassifierCNN(ImageClassifierConfig(image_size=8, channels=[4, 8], feature_dim=8)).save_pretrained(clf)
    ev = load_script("eval/image_sample_eval.py")
    res = ev.main(["--model", str(trained.out), "--classifier", str(clf), "--dataset", "digits", "--steps", "2", "4",
                   "--num-per-class", "3", "--batch-size", "16", "--device", "cpu", "--json", str(tmp_path / "e.json")])
    printed = capsys.readouterr().out
    assert "classifier-FID" in printed and "class acc" in printed
    assert [r["steps"] for r in res["results"]] == [2, 4]
    for r in res["results"]:
        assert r["n_images"] == 30 and r["classifier_fid"] >= 0 and 0 <= r["class_accuracy"] <= 1
    assert json.loads((tmp_path / "e.json").read_text())["metric"] == res["metric"]
