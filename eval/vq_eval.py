"""Reconstruction quality of an image tokenizer (a recipes/train_vq.py dir or a diffusers VQModel dir).

    python eval/vq_eval.py --tokenizer runs/vq64_gpu --dataset emoji64.npz --out-dir runs/vq64_eval
    python eval/vq_eval.py --tokenizer runs/vq64_tiny --dataset runs/rgb_shapes --image-size 64 --channels 3 \\
        --out-dir runs/vq64_tiny_eval --classifier runs/emoji_classifier      # + the reconstruction-FID floor

Prints one JSON line and writes into ``--out-dir`` (refused if it holds these files, unless ``--overwrite``):
  metrics.json          PSNR (dB), SSIM (torchmetrics; null without it), MSE, codebook usage and perplexity, and with
                        --classifier the classifier-FID of reconstructions vs originals (the tokenizer's FID floor)
  reconstructions.npz   the reconstructions (``images`` uint8, ``labels``) — ``eval/fid.py --images`` reads it
  originals.npz         the images they reconstruct, same format (``eval/fid.py --reference`` reads it)
  reconstructions.png   grid: rows of originals, each followed by its row of reconstructions
"""

from __future__ import annotations

import json
import os
import time

import torch

from mdlm.cli import ArgumentParser, UserError, positive_int, refuse_overwrite, run_cli, set_torch_threads
from mdlm.data.images import dataset_to_tensors, load_image_dataset, save_image_grid, save_samples_npz
from mdlm.evaluation.reconstruction import reconstruct, reconstruction_metrics
from mdlm.tokenizers.image import load_image_tokenizer

OUTPUTS = ("metrics.json", "reconstructions.npz", "originals.npz", "reconstructions.png")


def parse_args(argv: list[str] | None = None):
    p = ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--tokenizer", required=True, help="image tokenizer dir (config.json + model.safetensors)")
    p.add_argument("--dataset", required=True, help="fashion-mnist, digits, an image folder or an exported .npz")
    p.add_argument("--split", default="test", choices=("test", "train"))
    p.add_argument("--image-size", type=positive_int, default=None, help="default: the tokenizer's")
    p.add_argument("--channels", type=int, choices=(1, 3), default=None, help="default: the tokenizer's")
    p.add_argument("--max-samples", type=positive_int, default=None)
    p.add_argument("--batch-size", type=positive_int, default=256)
    p.add_argument("--classifier", default=None, help="recipes/train_classifier.py dir: adds the reconstruction FID")
    p.add_argument("--grid-rows", type=positive_int, default=4, help="pairs of rows (originals / reconstructions) in the PNG")
    p.add_argument("--out-dir", required=True)
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    return p.parse_args(argv)


def comparison_grid(x: torch.Tensor, rec: torch.Tensor, rows: int, per_row: int = 8) -> torch.Tensor:
    """(N, C, H, W) originals and reconstructions → rows of originals each followed by their reconstructions."""
    out = []
    for r in range(min(rows, -(-x.shape[0] // per_row))):
        sl = slice(r * per_row, (r + 1) * per_row)
        out += [x[sl], rec[sl]]
    return torch.cat(out)


def recon_fid(classifier_dir: str, recs: torch.Tensor, x: torch.Tensor, device: str) -> float:
    from mdlm.evaluation.classifier import load_classifier
    from mdlm.evaluation.fid import classifier_fid

    clf = load_classifier(classifier_dir, device=device)
    return classifier_fid(clf, recs, x)


def evaluate(args) -> dict:
    set_torch_threads(args.threads)
    paths = [os.path.join(args.out_dir, f) for f in OUTPUTS]
    for path in paths:
        refuse_overwrite(path, args.overwrite)
    tok = load_image_tokenizer(args.tokenizer, device=args.device)
    size, channels = args.image_size or tok.image_size, args.channels or tok.num_channels
    data = load_image_dataset(args.dataset, size, channels)
    x, y = dataset_to_tensors(data[args.split])  # (N, C, H, W) in [-1, 1], (N,)
    x, y = x[: args.max_samples], y[: args.max_samples]
    t0 = time.time()
    recs, codes = reconstruct(tok, x, args.batch_size)  # (N, C, H, W), (N, h, w)
    metrics = reconstruction_metrics(x, recs, codes, tok.codebook_size)
    metrics.update(tokenizer=args.tokenizer, dataset=args.dataset, split=args.split, latent_shape=list(tok.latent_shape),
                   seconds=round(time.time() - t0, 2))
    if args.classifier:
        metrics["recon_classifier_fid"] = recon_fid(args.classifier, recs, x, args.device)
        metrics["classifier"] = args.classifier
    os.makedirs(args.out_dir, exist_ok=True)
    save_samples_npz(paths[1] + ".tmp.npz", recs, y)
    save_samples_npz(paths[2] + ".tmp.npz", x, y)
    per_row = min(8, x.shape[0])
    save_image_grid(comparison_grid(x, recs, args.grid_rows, per_row), paths[3] + ".tmp.png", nrow=per_row)
    for path in paths[1:]:
        os.replace(path + (".tmp.png" if path.endswith(".png") else ".tmp.npz"), path)
    with open(paths[0] + ".tmp", "w", encoding="utf-8") as f:
        json.dump(metrics, f, indent=2)
    os.replace(paths[0] + ".tmp", paths[0])
    print(json.dumps(metrics))
    return metrics


@run_cli
def main() -> dict:
    args = parse_args()
    if not os.path.isdir(args.tokenizer):
        raise UserError(f"--tokenizer {args.tokenizer!r} is not a directory")
    return evaluate(args)


if __name__ == "__main__":
    main()
