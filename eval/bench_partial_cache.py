"""Moment-sampler sub-steps with and without partial caching (Hayakawa et al. 2025): cost and error.

    python eval/bench_partial_cache.py --model runs/fmnist_mdm_tiny --classifier .artifacts/fmnist_classifier
    python eval/bench_partial_cache.py --model runs/fmnist_mdm_gpu --classifier .artifacts/fmnist_classifier \\
        --steps 4 8 16 --substeps 4 --num-per-class 100 --device cuda --dtype bfloat16 --out docs/benchmarks/x.json

For each step count, on the same classes and seed, the moment sampler (the checkpoint's sampler defaults,
``sampler=moment``, α = ``--alpha``) runs
  (1) ``substeps=1``: every chosen token of a step drawn from the step's one forward;
  (2) ``substeps=S`` exact: the chosen tokens drawn in S groups, each after a full forward (S× NFE);
  (3) ``substeps=S`` with partial caching: the later groups recompute only the chosen columns against
      the K/V of the step's forward (:mod:`mdlm.sampling.cached_calls`);
  (4) ``substeps=1`` at S× the steps: a full trajectory of as many forwards as (2), for reference.
Reported: NFE and token positions computed per image, wall time, classifier-FID against the VQ
reconstructions of the test images (``recon``) and the test images, class accuracy, and for (3) the
share of image tokens equal to (2)'s — the approximation error of partial caching (same random stream).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, HERE)

import torch  # noqa: E402

from image_sample_eval import ImageScorer, load_checkpoint, load_reference_data  # noqa: E402
from mdlm.cli import run_cli  # noqa: E402
from mdlm.metrics.classifier import load_classifier  # noqa: E402
from mdlm.pipelines.image import generate_images  # noqa: E402
from mdlm.pipelines.text import sampler_config_from  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", required=True, help="image MDM checkpoint dir")
    p.add_argument("--classifier", required=True, help="Fashion-MNIST classifier dir")
    p.add_argument("--dataset", default="fashion-mnist", help="reference data set (fashion-mnist, digits, a folder)")
    p.add_argument("--data-dir", default=None, help="Fashion-MNIST IDX dir (default: $MDLM_FASHION_MNIST_DIR or Debian's)")
    p.add_argument("--steps", type=int, nargs="+", default=[4, 8])
    p.add_argument("--substeps", type=int, default=4)
    p.add_argument("--alpha", type=float, default=1.0, help="moment sampler α (choice_temperature)")
    p.add_argument("--num-per-class", type=int, default=50)
    p.add_argument("--max-reference", type=int, default=2000)
    p.add_argument("--batch-size", type=int, default=500)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--dtype", choices=["float32", "bfloat16"], default=None)
    p.add_argument("--out", default=None, help="write the rows and metadata here (JSON; refuses to overwrite)")
    a = p.parse_args(argv)
    if a.substeps < 2:
        p.error("--substeps must be ≥ 2")
    if a.out and os.path.exists(a.out):
        p.error(f"{a.out} exists; choose another --out")
    return a


def one_run(ckpt, scorer: ImageScorer, steps: int, over: dict[str, Any], a: argparse.Namespace):
    config, _ = sampler_config_from(ckpt.defaults, {"sampler": "moment", "remasking": "low_confidence",
                                                    "choice_temperature": a.alpha, "steps": steps, **over})
    g = torch.Generator(device=ckpt.device).manual_seed(a.seed)
    classes = list(range(ckpt.info.layout.num_classes))
    if ckpt.device.type == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    out = generate_images(ckpt.model, ckpt.info.layout, ckpt.vq, classes, a.num_per_class, config, g,
                          batch_size=a.batch_size)
    if ckpt.device.type == "cuda":
        torch.cuda.synchronize()
    dt = time.perf_counter() - t
    s = scorer.score(out.images, out.labels, ["recon", "test"], ckpt)
    return out, {"nfe": out.nfe, "positions_per_image": out.positions, "seconds": round(dt, 3),
                 "fid_recon": round(s["fid"]["recon"], 2), "fid_test": round(s["fid"]["test"], 2),
                 "class_accuracy": round(s["class_accuracy"], 4)}


def main(argv: list[str] | None = None) -> list[dict]:
    """Run the benchmark; return its rows."""
    a = parse_args(argv)
    dtype = getattr(torch, a.dtype) if a.dtype else None
    ckpt = load_checkpoint(a.model, a.device, dtype)
    clf = load_classifier(a.classifier, ckpt.device)
    scorer = ImageScorer(clf, load_reference_data(a.dataset, a.data_dir), max_reference=a.max_reference,
                         batch_size=a.batch_size, dataset=a.dataset)
    rows = []
    S = a.substeps
    for steps in a.steps:
        _, r1 = one_run(ckpt, scorer, steps, {"substeps": 1}, a)
        exact, r2 = one_run(ckpt, scorer, steps, {"substeps": S}, a)
        part, r3 = one_run(ckpt, scorer, steps, {"substeps": S, "partial_cache": True}, a)
        _, r4 = one_run(ckpt, scorer, steps * S, {"substeps": 1}, a)  # the trajectory sub-steps approximate
        img = slice(1, None)  # the class token is fixed
        r3["tokens_equal_to_exact"] = round(float((part.sequences[:, img] == exact.sequences[:, img]).double().mean()), 4)
        for name, r in (("substeps 1", r1), (f"substeps {S} exact", r2), (f"substeps {S} partial cache", r3),
                        (f"substeps 1 at {steps * S} steps", r4)):
            rows.append({"steps": steps, "run": name, **r})
    print(f"\nmoment sampler (α={a.alpha}) on {a.model} | {ckpt.device} | {a.num_per_class * len(range(ckpt.info.layout.num_classes))} "
          f"images per row | CFG as the checkpoint's defaults\n")
    print("| steps | run | NFE | positions/image | s | FID vs recon | FID vs test | class acc | tokens = exact |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        eq = r.get("tokens_equal_to_exact")
        print(f"| {r['steps']} | {r['run']} | {r['nfe']} | {r['positions_per_image']} | {r['seconds']} | {r['fid_recon']} | "
              f"{r['fid_test']} | {r['class_accuracy']:.3f} | {'' if eq is None else f'{100 * eq:.1f}%'} |")
    if a.out:
        import transformers

        meta = {"device": torch.cuda.get_device_name() if ckpt.device.type == "cuda" else "cpu", "torch": torch.__version__,
                "transformers": transformers.__version__, "command": "python eval/bench_partial_cache.py " + " ".join(sys.argv[1:]),
                "date": time.strftime("%Y-%m-%d")}
        os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
        with open(a.out, "w", encoding="utf-8") as f:
            json.dump({"meta": meta, "rows": rows}, f, indent=1)
    return rows


if __name__ == "__main__":
    run_cli(main)()
