"""Compare image-tokenizer designs at equal steps on a CPU: network (hand-written VQ-VAE vs diffusers blocks) and
quantiser (ema / l2ema / fsq), plain MSE loss, evaluated on held-out images (the measurement of
docs/images/tokenizer.md).

    python eval/vq_compare.py --dataset emoji64.npz --designs vqvae_ema,vqgan_ema,vqgan_l2ema,vqgan_fsq \\
        --steps 120 --eval-every 120 --train-images 1000 --test-images 200 --threads 1

Prints one JSON line per design and evaluation: steps, wall seconds, parameters, PSNR, SSIM, codes used, perplexity.
"""

from __future__ import annotations

import json
import time

import torch

from mdlm.cli import ArgumentParser, UserError, positive_int, run_cli, set_torch_threads
from mdlm.data.images import dataset_to_tensors, load_image_dataset
from mdlm.evaluation.reconstruction import evaluate_reconstruction
from mdlm.tokenizers.image import VQConfig, VQModelForImages
from mdlm.tokenizers.vqgan import QUANTIZERS, VQGANConfig, VQGANForImages


def make(design: str, k: int = 1024):
    """``vqvae_<quantiser>`` (hand-written [32, 64]) or ``vqgan_<quantiser>`` (diffusers blocks (32, 64, 64))."""
    net, _, q = design.partition("_")
    if net == "vqvae" and q in QUANTIZERS:
        return VQModelForImages(VQConfig(in_channels=3, image_size=64, hidden_channels=[32, 64], num_res_blocks=2,
                                         embedding_dim=16, codebook_size=k, quantizer=q, fsq_levels=(8, 5, 5, 5)))
    if net == "vqgan" and q in QUANTIZERS:
        return VQGANForImages(VQGANConfig(block_out_channels=(32, 64, 64), norm_num_groups=8, quantizer=q,
                                          embedding_dim=16, codebook_size=k, fsq_levels=(8, 5, 5, 5)))
    raise UserError(f"unknown design {design!r}: vqvae_<q> or vqgan_<q>, q in {', '.join(QUANTIZERS)}")


def run_design(design: str, x_train: torch.Tensor, x_test: torch.Tensor, args) -> None:
    torch.manual_seed(args.seed)
    m = make(design).train()
    opt = torch.optim.Adam(m.parameters(), lr=args.lr)
    g = torch.Generator().manual_seed(args.seed)
    t0 = time.time()
    for step in range(1, args.steps + 1):
        out = m(x_train[torch.randint(0, len(x_train), (args.batch_size,), generator=g)])
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        if step % args.eval_every == 0 or step == args.steps:
            r = evaluate_reconstruction(m.eval(), x_test, batch_size=50)
            m.train()
            print(json.dumps({"design": design, "steps": step, "wall_s": round(time.time() - t0, 1),
                              "params_M": round(sum(p.numel() for p in m.parameters()) / 1e6, 3),
                              "psnr_db": round(r["psnr_db"], 2), "ssim": r["ssim"], "codes_used": r["codebook_codes_used"],
                              "codebook_size": r["codebook_size"], "perplexity": round(r["codebook_perplexity"], 1)}), flush=True)


@run_cli
def main() -> None:
    p = ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", required=True, help="64×64 RGB source: an image folder or an exported .npz")
    p.add_argument("--designs", default="vqvae_ema,vqgan_ema,vqgan_l2ema,vqgan_fsq")
    p.add_argument("--steps", type=positive_int, default=120)
    p.add_argument("--eval-every", type=positive_int, default=120)
    p.add_argument("--batch-size", type=positive_int, default=8)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--train-images", type=positive_int, default=1000)
    p.add_argument("--test-images", type=positive_int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args()
    set_torch_threads(args.threads)
    data = load_image_dataset(args.dataset, 64, 3)
    x_train = dataset_to_tensors(data["train"])[0][: args.train_images]  # (N, 3, 64, 64)
    x_test = dataset_to_tensors(data["test"])[0][: args.test_images]
    for design in args.designs.split(","):
        run_design(design.strip(), x_train, x_test, args)


if __name__ == "__main__":
    main()
