"""Train an image tokenizer with ``transformers.Trainer``: the small VQ-VAE (mdlm.tokenizers.image.VQModelForImages,
Fashion-MNIST 7×7 codes) or the VQGAN-style tokenizer for 64×64 RGB (mdlm.tokenizers.vqgan.VQGANForImages, 16×16
codes; docs/images/tokenizer.md), on Fashion-MNIST, an exported .npz or a folder of images.

Launch:

    # tiny CPU run (a few minutes): 7×7 tokens, 512 codes
    nice python recipes/train_vq.py --config recipes/configs/fmnist_vq_tiny.yaml
    # overrides: any field below or of TrainingArguments
    python recipes/train_vq.py --config recipes/configs/fmnist_vq_tiny.yaml --max_steps 100 --output_dir runs/vq_x
    # bigger run on one GPU (512 codes, wider nets, 30 epochs)
    python recipes/train_vq.py --config recipes/configs/fmnist_vq_gpu.yaml
    # a folder of images (class = sub-folder), converted to 1×32×32
    python recipes/train_vq.py --config recipes/configs/fmnist_vq_tiny.yaml --dataset path/to/folder \\
        --image_size 32 --output_dir runs/vq_folder

    # the 64×64 RGB VQGAN tokenizer (16×16 codes; docs/images/tokenizer.md): seconds on a CPU, ~4 min on an H200
    python recipes/train_vq.py --config recipes/configs/vq64_tiny.yaml
    python recipes/train_vq.py --config recipes/configs/vq64_gpu.yaml --dataset emoji

Writes ``output_dir/`` = config.json + model.safetensors (loadable with
``mdlm.tokenizers.image.load_image_tokenizer``), ``metrics.json`` (test-split reconstruction PSNR,
SSIM, codebook usage; printed too) and ``reconstructions.png`` (test images, then their
reconstructions). ``--architecture vqgan`` trains :class:`mdlm.tokenizers.vqgan.VQGANForImages` with
the loss of :mod:`mdlm.tokenizers.vqgan_losses` (L1/L2, perceptual, patch-GAN; each switchable).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass, field


import torch  # noqa: E402
from transformers import Trainer, TrainingArguments, set_seed  # noqa: E402

from mdlm.cli import UserError, parse_config_and_args, run_cli  # noqa: E402
from mdlm.data.images import TensorImageDataset, dataset_to_tensors, load_image_dataset, save_image_grid  # noqa: E402
from mdlm.data.subsets import subset_indices  # noqa: E402
from mdlm.evaluation.reconstruction import evaluate_reconstruction  # noqa: E402
from mdlm.tokenizers.image import VQConfig, VQModelForImages, load_image_tokenizer, save_pretrained_atomic  # noqa: E402
from mdlm.tokenizers.vqgan import QUANTIZERS, VQGANConfig, VQGANForImages  # noqa: E402
from mdlm.tokenizers.vqgan_losses import VQGANLossArguments  # noqa: E402
from mdlm.tokenizers.vqgan_training import VQGANTrainingModule  # noqa: E402
from mdlm.training.args import check_positive  # noqa: E402
from mdlm.training.callbacks import TimeBudget  # noqa: E402
from mdlm.training.run import mark_finished, prepare_run, run_recipe, train_from  # noqa: E402
from mdlm.training.safe_trainer import SafeCheckpointMixin  # noqa: E402


@dataclass
class VQModelArguments:
    """The tokenizer: ``vqvae`` (VQConfig) or ``vqgan`` (VQGANConfig); ``model_name_or_path`` continues a saved one."""

    model_name_or_path: str | None = field(default=None, metadata={"help": "VQ dir to start from"})
    architecture: str = field(default="vqvae", metadata={"help": "vqvae (small conv VQ-VAE) or vqgan (diffusers blocks)"})
    block_out_channels: list[int] = field(
        default_factory=lambda: [64, 128, 128], metadata={"help": "vqgan: one per block; 2^(n-1) downsampling"}
    )
    layers_per_block: int = field(default=1, metadata={"help": "vqgan: ResNet blocks per level"})
    norm_num_groups: int = field(default=32, metadata={"help": "vqgan: GroupNorm groups"})
    mid_block_add_attention: bool = field(default=False, metadata={"help": "vqgan: self-attention in the mid block"})
    quantizer: str | None = field(default=None, metadata={"help": "fsq, l2ema or ema (default: ema for vqvae, fsq for vqgan)"})
    fsq_levels: list[int] = field(default_factory=lambda: [8, 5, 5, 5], metadata={"help": "fsq: levels per channel"})
    vqgan_loss: bool | None = field(
        default=None, metadata={"help": "train with the VQGAN loss (L1/L2, perceptual, patch-GAN); default: for vqgan only"}
    )

    @property
    def use_vqgan_loss(self) -> bool:
        return self.architecture == "vqgan" if self.vqgan_loss is None else bool(self.vqgan_loss)
    hidden_channels: list[int] = field(default_factory=lambda: [64, 128], metadata={"help": "one per 2× downsampling"})
    num_res_blocks: int = 2
    res_channels: int | None = None
    embedding_dim: int = 64
    codebook_size: int = 512
    commitment_cost: float = field(default=0.25, metadata={"help": "β of the commitment loss"})
    ema_decay: float = 0.99
    dead_code_threshold: float = field(default=1.0, metadata={"help": "restart codes whose EMA count < this"})

    def __post_init__(self) -> None:
        check_positive(self, "num_res_blocks", "embedding_dim", "codebook_size", optional=("res_channels",))
        if not self.hidden_channels or any(not isinstance(c, int) or c < 1 for c in self.hidden_channels):
            raise ValueError(f"--hidden_channels must be positive integers, got {self.hidden_channels!r}")
        if self.architecture not in ("vqvae", "vqgan"):
            raise ValueError(f"--architecture must be vqvae or vqgan, got {self.architecture!r}")
        if self.quantizer is None:
            self.quantizer = "fsq" if self.architecture == "vqgan" else "ema"
        if self.quantizer not in QUANTIZERS:
            raise ValueError(f"--quantizer must be one of {', '.join(QUANTIZERS)}, got {self.quantizer!r}")


@dataclass
class ImageDataArguments:
    dataset: str = field(default="fashion-mnist", metadata={"help": "fashion-mnist, digits, or an image folder"})
    image_size: int | None = field(default=None, metadata={"help": "default: the data set's (28 for a folder)"})
    channels: int = field(default=1, metadata={"help": "1 (grayscale) or 3 (RGB)"})
    max_train_samples: int | None = None
    max_eval_samples: int | None = None
    num_preview: int = field(default=16, metadata={"help": "test images in reconstructions.png"})
    torch_num_threads: int | None = field(
        default=None, metadata={"help": "CPU threads for torch (1 is fastest on a busy 2-core box)"}
    )
    max_train_seconds: float | None = field(
        default=None, metadata={"help": "stop training after this much wall time (a fixed-time GPU slot); default: off"}
    )

    def __post_init__(self) -> None:
        check_positive(self, optional=("image_size", "max_train_samples", "max_eval_samples", "torch_num_threads"))
        if self.max_train_seconds is not None and not self.max_train_seconds > 0:
            raise ValueError(f"--max_train_seconds must be positive, got {self.max_train_seconds}")
        if self.channels not in (1, 3):
            raise ValueError(f"--channels must be 1 or 3, got {self.channels}")
        if self.num_preview < 0:
            raise ValueError(f"--num_preview must be ≥ 0, got {self.num_preview}")


def collate_pixels(rows: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    return {"pixel_values": torch.stack([r["pixel_values"] for r in rows])}  # (B, C, H, W)


class VQTrainer(SafeCheckpointMixin, Trainer):
    """Trainer whose loss is the VQ-VAE's own (reconstruction + β commitment); also logs the
    reconstruction loss, code perplexity and restarted codes averaged over the logging window.
    Checkpoints are staged and finite-only (``SafeCheckpointMixin``); a NaN/inf loss stops training."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._extra: dict[str, list[float]] = {}

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if isinstance(self.accelerator.unwrap_model(model), VQGANTrainingModule):
            loss, extra = model(inputs["pixel_values"], step=self.state.global_step)
            self._check_finite(loss)
            for k, v in extra.items():
                self._extra.setdefault(k, []).append(v)
            return (loss, {"loss": loss}) if return_outputs else loss
        out = model(pixel_values=inputs["pixel_values"])
        self._check_finite(out.loss)
        if model.training:
            vq = self.accelerator.unwrap_model(model).quantizer
            for k, v in (
                ("recon_mse", out.reconstruction_loss),
                ("commit", out.commitment_loss),
                ("code_ppl", out.perplexity),
                ("restarts", vq.last_restarts),
            ):
                self._extra.setdefault(k, []).append(float(v))
        return (out.loss, out) if return_outputs else out.loss

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs and self._extra:
            logs.update({k: round(sum(v) / len(v), 5) for k, v in self._extra.items()})
            self._extra = {}
        super().log(logs, start_time)


def load_tokenizer_to_continue(margs: VQModelArguments, channels: int, image_size: int):
    model = load_image_tokenizer(margs.model_name_or_path)  # safetensors only, whole and finite
    want = VQGANForImages if margs.architecture == "vqgan" else VQModelForImages
    if not isinstance(model, want):
        raise ValueError(f"{margs.model_name_or_path} is not a recipes/train_vq.py --architecture {margs.architecture} tokenizer")
    if (model.num_channels, model.image_size) != (channels, image_size):
        raise ValueError(
            f"{margs.model_name_or_path} takes {model.num_channels}×{model.image_size}² images, "
            f"the data are {channels}×{image_size}²"
        )
    return model.train()


def new_tokenizer(margs: VQModelArguments, channels: int, image_size: int) -> VQModelForImages | VQGANForImages:
    common = dict(
        image_size=image_size, embedding_dim=margs.embedding_dim, codebook_size=margs.codebook_size,
        commitment_cost=margs.commitment_cost, ema_decay=margs.ema_decay, dead_code_threshold=margs.dead_code_threshold,
    )
    if margs.architecture == "vqgan":
        return VQGANForImages(VQGANConfig(
            in_channels=channels, block_out_channels=margs.block_out_channels, layers_per_block=margs.layers_per_block,
            norm_num_groups=margs.norm_num_groups, mid_block_add_attention=margs.mid_block_add_attention,
            quantizer=margs.quantizer, fsq_levels=margs.fsq_levels, **common,
        ))
    return VQModelForImages(VQConfig(
        in_channels=channels, hidden_channels=margs.hidden_channels, num_res_blocks=margs.num_res_blocks,
        res_channels=margs.res_channels, quantizer=margs.quantizer, fsq_levels=margs.fsq_levels, **common,
    ))


def build_model(margs: VQModelArguments, largs: VQGANLossArguments, channels: int, image_size: int):
    """The module the Trainer optimises: the VQ-VAE itself, or a VQGAN wrapped with its discriminator/perceptual net."""
    if not margs.use_vqgan_loss and (largs.perceptual_model or largs.disc_weight > 0):
        raise ValueError("--perceptual_model / --disc_weight belong to the VQGAN loss: add --vqgan_loss true "
                         "(or use --architecture vqgan)")
    if margs.model_name_or_path:
        tok = load_tokenizer_to_continue(margs, channels, image_size)
    else:
        tok = new_tokenizer(margs, channels, image_size)
    if margs.use_vqgan_loss and largs.perceptual_weight > 0 and not largs.perceptual_model:
        print(f"perceptual term off: --perceptual_weight {largs.perceptual_weight:g} needs --perceptual_model DIR "
              "(a recipes/train_classifier.py output; no VGG/LPIPS weights exist offline)", flush=True)
    return VQGANTrainingModule(tok, largs) if margs.use_vqgan_loss else tok


def tokenizer_of(module):
    """The tokenizer inside what the Trainer trained."""
    return module.vq if isinstance(module, VQGANTrainingModule) else module


def write_json_atomic(obj: dict, path: str) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)


def run_fingerprint(margs: VQModelArguments, dargs: ImageDataArguments, largs: VQGANLossArguments) -> str:
    """What makes two VQ runs "the same run" for resuming (not preview count, threads or eval size)."""
    skip = ("num_preview", "torch_num_threads", "max_eval_samples", "max_train_seconds")
    data = {k: v for k, v in asdict(dargs).items() if k not in skip}
    blob = json.dumps({"model": asdict(margs), "data": data, "loss": asdict(largs)}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def train(argv: list[str] | None = None) -> VQTrainer:
    """The whole recipe; returns the trainer. Raises on bad input."""
    margs, dargs, largs, targs = parse_config_and_args(
        (VQModelArguments, ImageDataArguments, VQGANLossArguments, TrainingArguments), argv
    )
    if dargs.torch_num_threads:
        torch.set_num_threads(dargs.torch_num_threads)
    resume = prepare_run(targs, run_fingerprint(margs, dargs, largs), recipe="train_vq")
    set_seed(targs.seed)
    t0 = time.time()
    try:
        data = load_image_dataset(dargs.dataset, dargs.image_size, dargs.channels)
    except ValueError as e:  # bad data settings: one line, exit 2
        raise UserError(str(e)) from None
    x_train, _ = dataset_to_tensors(data["train"])  # (N, C, H, W)
    x_test, _ = dataset_to_tensors(data["test"])
    keep_train, keep_test = (subset_indices(len(x), n) for x, n in ((x_train, dargs.max_train_samples),
                                                                     (x_test, dargs.max_eval_samples)))
    x_train = x_train if keep_train is None else x_train[keep_train]  # seeded draws: sets stored in class order
    x_test = x_test if keep_test is None else x_test[keep_test]
    channels, image_size = x_train.shape[1], x_train.shape[2]
    try:
        model = build_model(margs, largs, channels, image_size)
    except ValueError as e:
        raise UserError(str(e)) from None
    tok = tokenizer_of(model)
    n_params = sum(p.numel() for p in tok.parameters())
    if targs.process_index == 0:
        h, w = tok.latent_shape
        print(
            f"{margs.architecture.upper()}: {n_params / 1e6:.2f}M parameters | {channels}×{image_size}² → {h}×{w} tokens, "
            f"{tok.codebook_size} codes | train {len(x_train)} / test {len(x_test)} images ({dargs.dataset})"
        )
    budget = [TimeBudget(dargs.max_train_seconds)] if dargs.max_train_seconds else []
    trainer = VQTrainer(model=model, args=targs, train_dataset=TensorImageDataset(x_train), data_collator=collate_pixels,
                        callbacks=budget)
    train_from(trainer, resume)
    trainer.check_finite_state("the final VQ tokenizer")  # every rank; never publish NaN weights
    if targs.should_save:  # metrics and the final model from the main process only
        save_results(trainer, margs, dargs, largs, x_test, n_params, time.time() - t0)
    return trainer


def save_results(trainer: VQTrainer, margs, dargs, largs, x_test: torch.Tensor, n_params: int, train_s: float) -> None:
    """Test-split metrics, the final model (atomic), the run's arguments and the preview grid."""
    targs = trainer.args
    model = tokenizer_of(trainer.accelerator.unwrap_model(trainer.model)).eval()
    metrics = evaluate_reconstruction(model, x_test.to(model.device), batch_size=targs.per_device_eval_batch_size)
    metrics.update(
        {
            "split": "test",
            "dataset": dargs.dataset,
            "latent_shape": list(model.latent_shape),
            "train_steps": trainer.state.global_step,
            "train_wall_s": round(train_s, 1),
            "n_params": n_params,
        }
    )
    os.makedirs(targs.output_dir, exist_ok=True)
    save_pretrained_atomic(model, targs.output_dir)
    write_json_atomic(metrics, os.path.join(targs.output_dir, "metrics.json"))
    write_json_atomic(
        {"model": asdict(margs), "data": asdict(dargs), "loss": asdict(largs)}, os.path.join(targs.output_dir, "train_vq_args.json")
    )
    if dargs.num_preview:
        x = x_test[: dargs.num_preview].to(model.device)
        save_image_grid(
            torch.cat([x, model.decode(model.encode(x))]).cpu(),
            os.path.join(targs.output_dir, "reconstructions.png"),
            nrow=min(dargs.num_preview, 16),
        )
    mark_finished(targs.output_dir, trainer.state.global_step)
    print(
        f"test reconstruction PSNR {metrics['psnr_db']:.2f} dB (mean over images; "
        f"{metrics['psnr_of_mean_mse_db']:.2f} dB from the mean MSE) | codebook usage "
        f"{metrics['codebook_fraction_used']:.3f} ({metrics['codebook_codes_used']}/{model.codebook_size} codes), "
        f"perplexity {metrics['codebook_perplexity']:.1f}"
        + (f" | SSIM {metrics['ssim']:.4f}" if metrics["ssim"] is not None else "")
        + f" | {train_s:.0f} s"
    )
    print(f"saved {targs.output_dir}/ (config.json, model.safetensors, metrics.json)")


@run_cli
def main() -> int:
    return run_recipe(train)


if __name__ == "__main__":
    main()
