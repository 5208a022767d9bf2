"""Train the small CNN classifier (mdlm.evaluation.classifier) whose features define the
classifier-FID (Fashion-MNIST CNN features) of eval/fid.py, with ``transformers.Trainer``.

Launch:

    # a few CPU minutes (1 thread), ≥ 90 % test accuracy
    nice python recipes/train_classifier.py --config recipes/configs/fmnist_classifier.yaml
    # 64×64 RGB emoji categories (the feature network of the 64×64 image work): GPU ~1 min, CPU dry run seconds
    python recipes/train_classifier.py --config recipes/configs/emoji_classifier_gpu.yaml
    python recipes/train_classifier.py --config recipes/configs/emoji_classifier_tiny.yaml
    # overrides: any field below or of TrainingArguments
    python recipes/train_classifier.py --config recipes/configs/fmnist_classifier.yaml --num_train_epochs 1 \\
        --output_dir runs/clf_x

Writes ``output_dir/`` = config.json + model.safetensors (``mdlm.evaluation.classifier.load_classifier``)
and ``metrics.json`` with the test accuracy, the balanced accuracy (mean per-class recall — emoji's classes are
imbalanced: People & Body is 56 % of its test split) and the majority-class share (printed too).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field


import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from transformers import Trainer, TrainingArguments, set_seed  # noqa: E402

from mdlm.cli import UserError, parse_config_and_args, run_cli  # noqa: E402
from mdlm.data.image_sources import source_name  # noqa: E402
from mdlm.data.images import TensorImageDataset, dataset_to_tensors, load_image_dataset  # noqa: E402
from mdlm.evaluation.classifier import (  # noqa: E402
    ImageClassifierCNN,
    ImageClassifierConfig,
    accuracy,
    per_class_recall,
    predict,
)
from mdlm.tokenizers.image import save_pretrained_atomic  # noqa: E402


@dataclass
class ClassifierArguments:
    channels: list[int] = field(default_factory=lambda: [16, 32, 64], metadata={"help": "conv widths"})
    num_pools: int = field(default=2, metadata={"help": "2×2 max-pools after the first N conv blocks (64 px: 4)"})
    feature_dim: int = field(default=128, metadata={"help": "penultimate (FID feature) width"})
    dropout: float = 0.3
    hflip: bool = field(default=True, metadata={"help": "random horizontal flips while training"})
    balanced_loss: bool = field(default=False, metadata={
        "help": "weight the cross-entropy by N / (K · count of the class) (imbalanced sets such as emoji)"})


@dataclass
class ClassifierDataArguments:
    dataset: str = field(default="fashion-mnist", metadata={
        "help": "fashion-mnist, digits, emoji, emoji-base, openclipart, tuxpaint, an exported .npz, or an image folder"})
    image_size: int | None = None
    channels_in: int = field(default=1, metadata={"help": "image channels: 1 or 3"})
    max_train_samples: int | None = None
    torch_num_threads: int | None = field(default=None, metadata={"help": "CPU threads for torch"})


def balanced_class_weights(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(K,) N / (K · n_k): every class carries the same total weight (a class absent from ``labels`` gets 0)."""
    counts = torch.bincount(labels, minlength=num_classes).float()  # (K,)
    return torch.where(counts > 0, len(labels) / (num_classes * counts.clamp(min=1)), torch.zeros_like(counts))


class WeightedLossTrainer(Trainer):
    """``Trainer`` whose loss is the class-weighted cross-entropy (weights (K,), see :func:`balanced_class_weights`)."""

    def __init__(self, *args, class_weights: torch.Tensor, **kwargs):
        super().__init__(*args, **kwargs)
        self.class_weights = class_weights

    def compute_loss(self, model, inputs, return_outputs=False, **kwargs):
        labels = inputs.pop("labels")
        outputs = model(**inputs)
        loss = F.cross_entropy(outputs.logits, labels, weight=self.class_weights.to(outputs.logits.device))
        return (loss, outputs) if return_outputs else loss


class FlipCollator:
    """Stack rows; with ``hflip`` flip a random half of the batch left-right (vectorised)."""

    def __init__(self, hflip: bool):
        self.hflip = hflip

    def __call__(self, rows: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        x = torch.stack([r["pixel_values"] for r in rows])  # (B, C, H, W)
        y = torch.stack([r["labels"] for r in rows])  # (B,)
        if self.hflip:
            flip = torch.rand(x.shape[0]) < 0.5  # (B,)
            x = torch.where(flip[:, None, None, None], x.flip(-1), x)
        return {"pixel_values": x, "labels": y}


@run_cli
def main() -> int:
    cargs, dargs, targs = parse_config_and_args((ClassifierArguments, ClassifierDataArguments, TrainingArguments))
    if dargs.torch_num_threads:
        torch.set_num_threads(dargs.torch_num_threads)
    set_seed(targs.seed)
    t0 = time.time()
    try:
        data = load_image_dataset(dargs.dataset, dargs.image_size, dargs.channels_in)
    except ValueError as e:  # bad data settings: one line, exit 2
        raise UserError(str(e)) from None
    x_train, y_train = dataset_to_tensors(data["train"])  # (N, C, H, W), (N,)
    x_test, y_test = dataset_to_tensors(data["test"])
    if dargs.max_train_samples:
        keep = torch.randperm(len(x_train), generator=torch.Generator().manual_seed(targs.seed))[: dargs.max_train_samples]
        x_train, y_train = x_train[keep], y_train[keep]  # a seeded random subset (sources are stored sorted by class)
    names = list(data["train"].features["label"].names)
    cfg = ImageClassifierConfig(
        in_channels=x_train.shape[1],
        image_size=x_train.shape[2],
        num_classes=len(names),
        channels=cargs.channels,
        num_pools=cargs.num_pools,
        feature_dim=cargs.feature_dim,
        dropout=cargs.dropout,
        class_names=names,
        trained_on=source_name(dargs.dataset),  # names the FID metric
    )
    model = ImageClassifierCNN(cfg)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"classifier: {n_params / 1e6:.3f}M parameters | train {len(x_train)} / test {len(x_test)} ({dargs.dataset})")
    kwargs = dict(model=model, args=targs, train_dataset=TensorImageDataset(x_train, y_train),
                  data_collator=FlipCollator(cargs.hflip))
    if cargs.balanced_loss:
        trainer = WeightedLossTrainer(**kwargs, class_weights=balanced_class_weights(y_train, len(names)))
    else:
        trainer = Trainer(**kwargs)
    trainer.train(resume_from_checkpoint=targs.resume_from_checkpoint or None)
    train_s = time.time() - t0
    if not targs.should_save:
        return 0
    model = trainer.accelerator.unwrap_model(trainer.model).eval()
    acc = accuracy(model, x_test, y_test, batch_size=targs.per_device_eval_batch_size)
    recall = per_class_recall(predict(model, x_test, targs.per_device_eval_batch_size), y_test, len(names))
    metrics = {
        "test_accuracy": acc,
        "test_balanced_accuracy": float(np.nanmean(recall)),
        "test_recall_per_class": {n: None if np.isnan(r) else round(float(r), 4) for n, r in zip(names, recall)},
        "majority_class_share": float(torch.bincount(y_test, minlength=len(names)).max() / len(y_test)),
        "n_test": len(x_test),
        "dataset": dargs.dataset,
        "train_steps": trainer.state.global_step,
        "train_wall_s": round(train_s, 1),
        "n_params": n_params,
        "feature_dim": cfg.feature_dim,
    }
    os.makedirs(targs.output_dir, exist_ok=True)
    save_pretrained_atomic(model, targs.output_dir)
    tmp = os.path.join(targs.output_dir, f"metrics.json.tmp{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump({**metrics, "args": {"model": asdict(cargs), "data": asdict(dargs)}}, f, indent=2)
    os.replace(tmp, os.path.join(targs.output_dir, "metrics.json"))
    print(f"test accuracy {acc:.4f}, balanced {metrics['test_balanced_accuracy']:.4f}, majority class "
          f"{metrics['majority_class_share']:.4f} ({len(x_test)} images) | {train_s:.0f} s | saved {targs.output_dir}/")
    return 0


if __name__ == "__main__":
    main()
