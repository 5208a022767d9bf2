"""Train a class-conditional masked-diffusion model on VQ image tokens (MaskGIT / eMIGM-style), with
the same model class, trainer and loss as text.

Launch (the same script on 1 or N processes):

    # one process, CPU: a small MDM on Fashion-MNIST with the tiny VQ, a few CPU minutes
    nice python recipes/train_image.py --vq_model runs/fmnist_vq_tiny --config recipes/configs/fmnist_mdm_tiny.yaml
    # overrides: any --key of the config / TrainingArguments / DiffusionArguments
    python recipes/train_image.py --vq_model runs/fmnist_vq_tiny --config recipes/configs/fmnist_mdm_tiny.yaml \\
        --max_steps 100 --schedule cosine --weighting elbo --t_min 0.001 --output_dir runs/x
    # one GPU (bf16); Fashion-MNIST IDX files from another dir
    python recipes/train_image.py --vq_model runs/fmnist_vq_tiny --config recipes/configs/fmnist_mdm_gpu.yaml \\
        --data_dir /path/to/fashion-mnist
    # DeepSpeed, N GPUs (ZeRO-1/2/3 configs in recipes/deepspeed/)
    deepspeed --num_gpus 2 recipes/train_image.py --vq_model runs/fmnist_vq_tiny \\
        --config recipes/configs/fmnist_mdm_gpu.yaml --deepspeed recipes/deepspeed/zero2.json
    # torchrun (plain DDP)
    torchrun --nproc_per_node 2 recipes/train_image.py --vq_model runs/fmnist_vq_tiny \\
        --config recipes/configs/fmnist_mdm_gpu.yaml
    # resume the newest complete checkpoint of --output_dir
    python recipes/train_image.py --vq_model runs/fmnist_vq_tiny --config recipes/configs/fmnist_mdm_tiny.yaml \\
        --resume_from_checkpoint auto
    # then: python recipes/generate.py --model runs/fmnist_mdm_tiny --class-id all --num-samples 8 --out grid.png

Data: ``--dataset fashion-mnist`` (IDX files; ``--data_dir`` or $MDLM_FASHION_MNIST_DIR, default
/usr/share/datasets/fashion-mnist), ``digits`` (scikit-learn 8×8) or ``imagefolder:PATH`` (class =
sub-folder; ``--image_size``/``--channels`` convert). Every image is encoded once with the VQ
(``--vq_model``: a recipes/train_vq.py output dir or a diffusers VQModel dir, safetensors weights) and
the token dataset is cached under ``--cache_dir`` (default ~/.cache/mdlm/image_tokens; ``none`` = no
cache), keyed by a SHA-256 of the VQ's config + weights, the data source (every file's path, size and
mtime) and the image size / channels (mdlm.data.image_tokens).

Sequences: ``[class token] + h·w codes`` (mdlm.data.images.ImageTokenLayout: codes 0..K-1, class c →
K + c, [MASK] = K + C). The class token is never masked and never scored; with probability
``cond_dropout`` (default 0.1 here) it is replaced by [MASK] (label dropout, for classifier-free
guidance). The objective is DiffusionArguments': ``--weighting elbo|maskgit`` (eMIGM: maskgit, w = 1),
``--schedule linear|cosine|exp|log-exp|…``, ``--t_min``, ``--masking mdm|maskgit``. Validation reports
the true ELBO on the test split (nats/bits per image token) whatever the weighting.

Text + class conditioning (``--captions true``; mdlm.data.text_image): the data set also gives a ``caption``
per image (emoji / openclipart, an exported ``.npz``, or a folder with a metadata.jsonl of ``file_name`` +
``caption``). A byte-level BPE of ``--caption_vocab_size`` is trained on the training captions (or
``--caption_tokenizer DIR`` reused) and put in ONE vocabulary with the codes and classes
(``TextImageLayout``: codes 0..K-1, classes K..K+C-1, text K+C..; [MASK] / pad = the tokenizer's own, shifted).
Sequences: ``[class] + --text_budget caption slots (padded) + h·w codes``; a longer caption is an error. The loss
is on the codes only. Dropout for CFG with the mask token: ``--class_dropout`` (class alone), ``--caption_dropout``
(caption alone), ``--cond_dropout`` (both). The captioned tokens are not cached (encoding takes seconds).

Regularisation for small image sets (docs/images/text_to_image.md): ``--hflip true`` encodes each training image's
mirror beside it (mdlm.data.image_augment; captions matching ``--hflip_skip`` — left/right/flag… — are not mirrored;
the validation split never is); ``--dataset A,B,C`` trains on several captioned sets, A's classes and test split
being the task's and B, C adding images without a class (mdlm.data.text_image_mix; needs ``--captions true``);
``--model_config '{"hidden_dropout": 0.1, "attention_dropout": 0.1}'``; and transformers' ``--save_strategy best
--load_best_model_at_end true --metric_for_best_model nll --greater_is_better false`` ships the checkpoint of the
lowest validation ELBO (eval_metrics.json gives its ELBO and ``eval_best_step``).

    python recipes/train_image.py --config recipes/configs/emoji_t2i_mdm_gpu.yaml --vq_model runs/vq64
    python recipes/train_image.py --config recipes/configs/t2i_mdm_tiny.yaml --vq_model runs/vq64_tiny   # CPU
    # then: python recipes/generate.py --model runs/emoji_t2i_mdm_gpu --prompt "red apple" --out apples.png

Writes ``output_dir/`` as an HF checkpoint (config.json with ``image_layout``, ``image_class_names``,
``image_vq``; model.safetensors; generation_config.json with the sampler defaults; eval_metrics.json),
plus ``vq/`` = a copy of the VQ tokenizer (the checkpoint is self-contained), ``caption_tokenizer/`` (text-image
runs) and ``samples.png``.
``AutoModelForMaskedLM.from_pretrained(output_dir)`` loads it after ``import mdlm``.
"""

from __future__ import annotations

import copy
import hashlib
import os
from dataclasses import asdict, dataclass

import torch  # noqa: E402
from transformers import AutoConfig, TrainingArguments, set_seed  # noqa: E402

import mdlm  # noqa: E402,F401  (registers the model with the Auto classes)
from mdlm.cli import UserError, parse_config_and_args, run_cli  # noqa: E402
from mdlm.data.image_augment import AugmentArguments  # noqa: E402
from mdlm.data.subsets import subset_indices  # noqa: E402
from mdlm.data.image_tokens import (  # noqa: E402,F401  (re-exported for callers of this script)
    CACHE_FORMAT,
    ImageTokenRows,
    LayoutVocab,
    cache_path,
    data_source_key,
    load_images,
    split_tensor,
    token_dataset,
)
from mdlm.data.images import ImageTokenLayout, check_codebook_size  # noqa: E402
from mdlm.data.text_image import TextImageLayout, prefix_len  # noqa: E402
from mdlm.data.text_image_args import TextImageArguments  # noqa: E402
from mdlm.tokenizers.vq_files import copy_vq, resolve_vq_dir, vq_files, vq_sha256  # noqa: E402,F401
from mdlm.training import MDMCollator, MDMTrainer, ModelArguments  # noqa: E402
from mdlm.training.build import build_model, run_fingerprint  # noqa: E402
from mdlm.training.callbacks import TimeBudget  # noqa: E402
from mdlm.training.image_args import (  # noqa: E402
    BudgetArguments,
    ImageDataArguments,
    ImageDiffusionArguments,
)
from mdlm.training.objective import record_objective  # noqa: E402
from mdlm.training.run import (  # noqa: E402
    final_eval,
    finish_run,
    prepare_run,
    train_from,
    write_json_atomic,
)

# Sampler defaults stored in generation_config.json (recipes/generate.py starts from them; every flag
# overrides them). MaskGIT's: cosine unmasking schedule, tokens drawn at temperature 1, positions
# committed by confidence with annealed Gumbel choice noise of scale 4.5, plus classifier-free guidance
# ℓ = c + 1·(c − u) (eMIGM's w = 2) on every step. On a 300-step CPU model (16 steps, 500 images) this
# beat no guidance / no choice noise (classifier-FID 279 vs 345, class accuracy 0.60 vs 0.43).
IMAGE_SAMPLER_DEFAULTS = {
    "steps": 16,
    "schedule": "cosine",
    "temperature": 1.0,
    "remasking": "low_confidence",
    "confidence": "prob",
    "choice_temperature": 4.5,
    "cfg_scale": 1.0,
    "cfg_interval": [0.0, 1.0],
}


# ----------------------------------------------------------------------------------------------
# the recipe


def start_checkpoint_layout(margs: ModelArguments, vq) -> ImageTokenLayout | None:
    """Continuing from ``--model_name_or_path``: its image layout, checked against the VQ (a codebook
    of another size raises ValueError naming both sizes). None for a new model or a non-image one."""
    if not margs.model_name_or_path:
        return None
    from mdlm.pipelines.image import image_model_info

    if not os.path.isdir(margs.model_name_or_path):
        raise UserError(f"model_name_or_path {margs.model_name_or_path!r} is not a directory")
    cfg = AutoConfig.from_pretrained(margs.model_name_or_path)
    if not getattr(cfg, "image_layout", None):
        return None  # a text / plain checkpoint: build_model checks the vocabulary
    info = image_model_info(cfg)
    check_codebook_size(int(vq.codebook_size), info.layout)
    if tuple(vq.latent_shape) != info.latent_shape:
        raise ValueError(f"{margs.model_name_or_path} was trained on {info.latent_shape} latents, the VQ gives {tuple(vq.latent_shape)}")
    return info.layout


def image_run_fingerprint(margs: ModelArguments, dargs: ImageDataArguments, diff, vq_digest: str) -> str:
    """What makes two image runs "the same run": model, data, objective and the VQ (by its hash); not where
    files live, how fast they encode, or the validation subset."""
    same_run = copy.copy(dargs)
    same_run.vq_model = same_run.data_dir = same_run.cache_dir = same_run.torch_num_threads = None
    same_run.encode_batch_size, same_run.max_eval_samples = 0, None
    return hashlib.sha256(f"{run_fingerprint(margs, same_run, diff)}|{vq_digest}".encode()).hexdigest()[:16]


def check_eval_batches(targs: TrainingArguments, n_eval: int) -> None:
    """``dataloader_drop_last`` must leave at least one validation batch (and says how many images it keeps)."""
    eval_batch = targs.per_device_eval_batch_size * targs.world_size
    if targs.dataloader_drop_last and n_eval % eval_batch:
        kept = n_eval // eval_batch * eval_batch
        if kept == 0:
            raise UserError(f"dataloader_drop_last with eval batches of {eval_batch} would skip all {n_eval} "
                            "validation images; lower per_device_eval_batch_size or drop dataloader_drop_last")
        if targs.process_index == 0:
            print(f"note: dataloader_drop_last: the validation ELBO uses {kept} of {n_eval} test images", flush=True)


def training_callbacks(model, margs, diff, budget, targs, seq_len: int, extra: tuple) -> list:
    """Throughput / MFU logging (mdlm models), the optional wall-time budget, then the caller's callbacks."""
    from mdlm.schedules import get_schedule
    from mdlm.training.throughput import (
        ThroughputCallback,
        expected_masked_share,
        flops_per_token,
    )

    out: list = []
    if margs.model_type == "mdlm":
        share = expected_masked_share(get_schedule(diff.schedule), diff.t_min)
        tokens_per_step = targs.per_device_train_batch_size * targs.gradient_accumulation_steps * seq_len
        out.append(ThroughputCallback(tokens_per_step, flops_per_token(model.config, seq_len, share)))
    out += list(extra)
    if budget.max_train_seconds:
        out.append(TimeBudget(budget.max_train_seconds))
    return out


@dataclass
class PreparedData:
    """What the trainer needs from the data, class-only or text-image alike."""

    layout: ImageTokenLayout | TextImageLayout
    class_names: list[str]
    train_rows: torch.utils.data.Dataset
    eval_rows: torch.utils.data.Dataset
    collator: object
    n_train: int
    n_eval: int
    caption_tokenizer: object | None = None


def class_image_data(dargs: ImageDataArguments, aug: AugmentArguments, vq, digest: str,
                     targs: TrainingArguments) -> PreparedData:
    """``[class] + codes`` rows from the (cached) token dataset (each training image and its mirror under ``--hflip``)."""
    if "," in dargs.dataset:
        raise UserError(f"--dataset {dargs.dataset!r}: several data sets need --captions true (the added sets have no class)")
    with targs.main_process_first(desc="encoding images with the VQ"):  # rank 0 encodes + caches first
        tokens = token_dataset(dargs, vq, digest, targs.device, verbose=targs.process_index == 0, hflip=aug.hflip)
    class_names = list(tokens["train"].features["label"].names)
    layout = ImageTokenLayout(int(vq.codebook_size), len(class_names))
    h, w = vq.latent_shape
    train_ids = split_tensor(tokens["train"], dargs.max_train_samples)  # (N, L)
    eval_ids = split_tensor(tokens["test"], dargs.max_eval_samples)  # (M, L)
    if train_ids.shape[1] != 1 + h * w:
        raise UserError(f"cached tokens have length {train_ids.shape[1]}, the VQ gives 1 + {h}×{w}; clear {dargs.cache_dir}")
    return PreparedData(layout, class_names, ImageTokenRows(train_ids), ImageTokenRows(eval_ids),
                        MDMCollator(pad_token_id=layout.mask_id), len(train_ids), len(eval_ids))  # fixed length: never pads


def text_image_data(dargs: ImageDataArguments, text: TextImageArguments, aug: AugmentArguments, vq,
                    targs: TrainingArguments) -> PreparedData:
    """``[class] + caption slots + codes`` rows (mdlm.data.text_image) from one or several captioned sets
    (``--dataset A,B``: mdlm.data.text_image_mix), mirrors added under ``--hflip``; the captions' BPE is trained
    here (or ``--caption_tokenizer`` loaded); images encoded in memory (no token cache: the captioned sets are small)."""
    from mdlm.data.text_image import train_caption_tokenizer
    from mdlm.data.text_image_data import (
        TextImageCollator,
        TextImageRows,
        encode_captioned,
    )
    from mdlm.data.text_image_mix import drop_overlong, load_sets, mirrored, mixture
    from mdlm.tokenizers.text import load_tokenizer

    main = targs.process_index == 0
    try:
        splits, class_names = mixture(load_sets(dargs.dataset, dargs.image_size, dargs.channels), dargs.max_train_samples)
        train = splits["train"]
        tok = (load_tokenizer(text.caption_tokenizer) if text.caption_tokenizer
               else train_caption_tokenizer(train.captions, text.caption_vocab_size))
        train, dropped = drop_overlong(train, tok, text.text_budget)
        n_images = len(train)
        if aug.hflip:
            train = mirrored(train, aug.hflip_skip)
        if main:
            print(f"training images: {n_images - int(train.added[:n_images].sum())} of the first set + "
                  f"{int(train.added[:n_images].sum())} added (no class; {dropped} dropped: caption over "
                  f"{text.text_budget} tokens) + {len(train) - n_images} mirrors = {len(train)} rows", flush=True)
        vq.to(targs.device)
        tokens = encode_captioned(vq, {"train": train, "test": splits["test"]}, class_names, tok, text.text_budget,
                                  dargs.encode_batch_size, progress=main)
    except ValueError as e:
        raise UserError(str(e)) from None
    train_ids = tokens.splits["train"]  # (N, L)
    eval_ids = tokens.splits["test"]  # (M, L)
    idx = subset_indices(len(eval_ids), dargs.max_eval_samples)  # a seeded draw: the test split is in class order
    eval_ids = eval_ids if idx is None else eval_ids[idx]
    collator = TextImageCollator(tokens.layout, text.class_dropout, text.caption_dropout,
                                 targs.seed + 7919 * targs.process_index)  # other draws on every rank
    return PreparedData(tokens.layout, tokens.class_names, TextImageRows(train_ids, tokens.layout, droppable=True),
                        TextImageRows(eval_ids, tokens.layout, droppable=False), collator, len(train_ids),
                        len(eval_ids), tok)


def train(argv: list[str] | None = None, callbacks: tuple = ()) -> MDMTrainer:
    """The whole recipe; returns the trainer (tests drive it in-process). Raises on bad input."""
    from accelerate import PartialState

    from mdlm.pipelines.image import CAPTION_TOKENIZER_SUBDIR, image_config_fields
    from mdlm.tokenizers.image import load_image_tokenizer

    margs, dargs, text, aug, diff, budget, targs = parse_config_and_args(
        (ModelArguments, ImageDataArguments, TextImageArguments, AugmentArguments, ImageDiffusionArguments,
         BudgetArguments, TrainingArguments), argv
    )
    if dargs.torch_num_threads:
        torch.set_num_threads(dargs.torch_num_threads)
    if not dargs.vq_model:
        raise UserError("--vq_model DIR is required (a recipes/train_vq.py output dir or a diffusers VQModel dir)")
    vq_dir = resolve_vq_dir(dargs.vq_model)
    digest = vq_sha256(vq_dir)
    vq = load_image_tokenizer(vq_dir)
    start_layout = start_checkpoint_layout(margs, vq)  # before anything is written
    main = targs.process_index == 0
    fingerprint = image_run_fingerprint(margs, dargs, diff, digest)
    if text.captions:
        fingerprint = hashlib.sha256(f"{fingerprint}|{sorted(asdict(text).items())}".encode()).hexdigest()[:16]
    if aug.hflip:
        fingerprint = hashlib.sha256(f"{fingerprint}|{sorted(asdict(aug).items())}".encode()).hexdigest()[:16]
    resume = prepare_run(targs, fingerprint, recipe="train_image")

    data = (text_image_data(dargs, text, aug, vq, targs) if text.captions
            else class_image_data(dargs, aug, vq, digest, targs))
    layout, class_names = data.layout, data.class_names
    if start_layout is not None and start_layout != layout:
        raise UserError(f"{margs.model_name_or_path} has the image layout {start_layout.to_dict()}, this data gives "
                        f"{layout.to_dict()}")
    h, w = vq.latent_shape
    seq_len = prefix_len(layout) + h * w
    check_eval_batches(targs, data.n_eval)
    set_seed(targs.seed)  # the initial weights depend on the seed only, not on what ran before
    model = build_model(margs, LayoutVocab(layout), seq_len)
    record_objective(model.config, diff)  # the checkpoint says how it was trained
    for k, v in image_config_fields(layout, (h, w), class_names, os.path.abspath(vq_dir), digest).items():
        setattr(model.config, k, v)
    if main:
        copy_vq(vq_dir, targs.output_dir, digest)
        if data.caption_tokenizer is not None:
            data.caption_tokenizer.save_pretrained(os.path.join(targs.output_dir, CAPTION_TOKENIZER_SUBDIR))
        text_part = f" + {layout.text_budget} caption slots" if text.captions else ""
        print(
            f"model: {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters | VQ {h}×{w} tokens, "
            f"{layout.codebook_size} codes | {layout.num_classes} classes{text_part} | vocab {layout.vocab_size} "
            f"(model {model.config.vocab_size}) | train {data.n_train} × {seq_len} tokens | validation {data.n_eval} "
            f"images ({dargs.dataset.split(',')[0]})",
            flush=True,
        )
    PartialState().wait_for_everyone()
    targs.remove_unused_columns = False
    trainer = MDMTrainer(
        model=model,
        args=targs,
        train_dataset=data.train_rows,
        eval_dataset=data.eval_rows,
        data_collator=data.collator,
        diffusion_args=diff,
        mask_token_id=layout.mask_id,
        callbacks=training_callbacks(model, margs, diff, budget, targs, seq_len, callbacks),
    )
    train_from(trainer, resume)
    metrics = final_eval(trainer)  # the saved model's: the best checkpoint's under --load_best_model_at_end
    metrics["eval_nats_per_image"] = metrics["eval_nll"] * (h * w)
    defaults = {"mask_token_id": layout.mask_id, **IMAGE_SAMPLER_DEFAULTS}
    finish_run(trainer, None, metrics, defaults)
    if main:  # the loss / ELBO curve (eval/plot_log.py reads it), also when no checkpoint-N holds the last steps
        write_json_atomic({"global_step": trainer.state.global_step, "log_history": trainer.state.log_history},
                          os.path.join(targs.output_dir, "log_history.json"))
    if diff.sample_on_end and targs.world_size == 1 and main:  # ZeRO-3 would need every rank in the forward
        write_samples(trainer.model, layout, vq, class_names, defaults, diff.sample_on_end, targs)
    return trainer


def write_samples(model, layout: ImageTokenLayout | TextImageLayout, vq, class_names: list[str], defaults: dict, n: int, targs) -> None:
    """``output_dir/samples.png``: ``n`` samples per class with the checkpoint's sampler defaults."""
    from mdlm.pipelines.image import class_label, generate_images, save_labeled_grid
    from mdlm.pipelines.text import sampler_config_from

    config, _ = sampler_config_from(defaults, {})
    was = model.training
    model.eval()
    device = next(model.parameters()).device
    vq.to(device)
    g = torch.Generator(device=device).manual_seed(targs.seed)
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bool(targs.bf16) and device.type == "cuda"):
        out = generate_images(model, layout, vq, list(range(layout.num_classes)), n, config, g)
    model.train(was)
    path = os.path.join(targs.output_dir, "samples.png")
    labels = [class_label(c, class_names) for c in range(len(class_names))]
    save_labeled_grid(out.images, path, nrow=n, row_labels=labels,
                      title=f"{config.steps} steps, CFG {config.guidance_scale:g}, {out.nfe} NFE")
    print(f"samples: {path} ({n} per class, {config.steps} steps, {out.nfe} NFE)", flush=True)


@run_cli
def main() -> int:
    from mdlm.training.run import run_recipe

    return run_recipe(train)


if __name__ == "__main__":
    main()
