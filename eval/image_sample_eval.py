"""Sample from a class-conditional image MDM and score the samples: classifier-FID (Fashion-MNIST
classifier features) and class accuracy, for several step counts.

    python eval/image_sample_eval.py --model runs/fmnist_mdm_tiny --classifier runs/fmnist_classifier \\
        --steps 8 16 32 --num-per-class 100 --json runs/fmnist_mdm_tiny/sample_eval.json
    # sampler overrides (defaults: the checkpoint's generation_config.json), e.g. no guidance:
    python eval/image_sample_eval.py --model DIR --classifier CLF --steps 16 --cfg-scale 0 --temperature 1

For each step count: ``num_per_class`` images of every class are generated with the one sampler
(mdlm.pipelines.image.generate_images → mdlm.sampling.generate), decoded with the checkpoint's VQ and
compared with the reference images (Fashion-MNIST ``test`` split by default) through the penultimate
features of the classifier (recipes/train_classifier.py). Metric functions are those of eval/fid.py /
mdlm.metrics: ``classifier-FID`` is a Fréchet distance of that classifier's 128-d features — NOT the
Inception FID of papers. ``class acc`` = share of samples that the classifier assigns to the class
they were generated for. Also reported: the classifier-FID of the VQ reconstructions of the reference
images (the floor the MDM can reach through this tokenizer) and of the training images themselves
(sampling noise of the metric at this sample size).

Prints a table and writes ``--json`` (one record per step count + the settings, wall times).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402

import mdlm  # noqa: E402,F401
from fid import METRIC_NAME  # noqa: E402  (eval/fid.py: the metric's one name)
from mdlm.data.images import dataset_to_tensors, load_fashion_mnist, load_image_dataset, save_samples_npz  # noqa: E402
from mdlm.metrics.classifier import accuracy, load_classifier  # noqa: E402
from mdlm.metrics.fid import classifier_features, feature_fid  # noqa: E402
from mdlm.pipelines import load_for_generation  # noqa: E402
from mdlm.pipelines.image import generate_images, image_model_info, load_image_vq  # noqa: E402
from mdlm.pipelines.text import sampler_config_from  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="image MDM checkpoint dir (recipes/train_image.py output)")
    p.add_argument("--classifier", required=True, help="classifier dir (recipes/train_classifier.py output)")
    p.add_argument("--steps", type=int, nargs="+", default=[8, 16, 32])
    p.add_argument("--num-per-class", type=int, default=100)
    p.add_argument("--dataset", default="fashion-mnist", help="reference data set (fashion-mnist, digits, a folder)")
    p.add_argument("--data-dir", default=None, help="Fashion-MNIST IDX dir (default: $MDLM_FASHION_MNIST_DIR or Debian's)")
    p.add_argument("--reference", default="test", choices=["test", "train"])
    p.add_argument("--max-reference", type=int, default=None, help="use the first N reference images")
    p.add_argument("--batch-size", type=int, default=500, help="rows per sampler call")
    p.add_argument("--json", default=None, help="write the results here")
    p.add_argument("--save-npz", default=None, help="directory: also write samples_steps{S}.npz for eval/fid.py")
    p.add_argument("--force", action="store_true", help="overwrite --json / npz files")
    g = p.add_argument_group("sampler overrides (default: the checkpoint's generation_config.json)")
    g.add_argument("--schedule")
    g.add_argument("--temperature", type=float)
    g.add_argument("--choice-temperature", type=float)
    g.add_argument("--confidence")
    g.add_argument("--remasking")
    g.add_argument("--cfg-scale", type=float)
    g.add_argument("--cfg-interval", type=float, nargs=2, metavar=("LO", "HI"))
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    g.add_argument("--dtype", choices=["float32", "bfloat16"], default=None)
    a = p.parse_args(argv)
    if a.num_per_class < 2 or min(a.steps) < 1:
        p.error("--num-per-class must be ≥ 2 and every --steps ≥ 1")
    for path in [a.json] if a.json else []:
        if os.path.exists(path) and not a.force:
            p.error(f"{path} exists; pass --force to replace it")
    return a


def load_reference_data(a: argparse.Namespace):
    """The image DatasetDict of ``--dataset`` (train/test)."""
    if a.dataset.lower().replace("_", "-") in ("fashion-mnist", "fmnist"):
        return load_fashion_mnist(a.data_dir)
    return load_image_dataset(a.dataset)


def fmt_row(cols: list, widths: list[int]) -> str:
    return " | ".join(str(c).rjust(w) for c, w in zip(cols, widths))


def main(argv: list[str] | None = None) -> dict:
    a = parse_args(argv)
    dtype = getattr(torch, a.dtype) if a.dtype else None
    loaded = load_for_generation(a.model, device=a.device, dtype=dtype)
    info = image_model_info(loaded.model.config)
    device = next(loaded.model.parameters()).device
    vq = load_image_vq(loaded.base_dir, info, device=device)
    clf = load_classifier(a.classifier, device)
    if clf.config.num_classes != info.layout.num_classes:
        raise ValueError(f"the classifier has {clf.config.num_classes} classes, the model {info.layout.num_classes}")

    t0 = time.perf_counter()
    data = load_reference_data(a)
    ref, _ = dataset_to_tensors(data[a.reference])  # (N_ref, C, H, W)
    ref = ref[: a.max_reference] if a.max_reference else ref
    ref_feats = classifier_features(clf, ref, a.batch_size)  # (N_ref, d)
    n_probe = min(len(ref), a.num_per_class * info.layout.num_classes)
    # reference points at the same sample size: VQ reconstructions of reference images (the floor
    # through this tokenizer) and real images of the other split (the metric's own noise)
    recon = torch.cat([vq.decode(vq.encode(ref[i : i + a.batch_size].to(device))).float().cpu()
                       for i in range(0, n_probe, a.batch_size)])  # (n_probe, C, H, W)
    floor_fid = feature_fid(classifier_features(clf, recon, a.batch_size), ref_feats)
    other = data["train" if a.reference == "test" else "test"]
    x_other, _ = dataset_to_tensors(other.select(range(min(n_probe, len(other)))))
    data_fid = feature_fid(classifier_features(clf, x_other, a.batch_size), ref_feats)
    ref_s = time.perf_counter() - t0

    overrides = {"schedule": a.schedule, "temperature": a.temperature, "choice_temperature": a.choice_temperature,
                 "confidence": a.confidence, "remasking": a.remasking, "cfg_scale": a.cfg_scale,
                 "cfg_interval": a.cfg_interval}
    classes = list(range(info.layout.num_classes))
    rows = []
    for steps in a.steps:
        config, _ = sampler_config_from(loaded.defaults, {**overrides, "steps": steps})
        g = torch.Generator(device=device).manual_seed(a.seed)
        if device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        out = generate_images(loaded.model, info.layout, vq, classes, a.num_per_class, config, g, batch_size=a.batch_size)
        if device.type == "cuda":
            torch.cuda.synchronize()
        dt = time.perf_counter() - t
        fid = feature_fid(classifier_features(clf, out.images, a.batch_size), ref_feats)
        acc = accuracy(clf, out.images, out.labels, a.batch_size)
        rows.append({"steps": steps, "nfe": out.nfe, "classifier_fid": round(fid, 4), "class_accuracy": round(acc, 4),
                     "n_images": len(out.labels), "sample_wall_s": round(dt, 2),
                     "images_per_s": round(len(out.labels) / dt, 1),
                     "sampler": {k: v for k, v in vars(config).items() if k in (
                         "schedule", "temperature", "choice_temperature", "confidence", "remasking", "cfg_scale",
                         "cfg_interval")}})
        if a.save_npz:
            os.makedirs(a.save_npz, exist_ok=True)
            path = os.path.join(a.save_npz, f"samples_steps{steps}.npz")
            if os.path.exists(path) and not a.force:
                raise ValueError(f"{path} exists; pass --force to replace it")
            save_samples_npz(path, out.images, out.labels)
        print(f"steps {steps}: classifier-FID {fid:.3f}, class acc {acc:.3f}, {dt:.1f}s", file=sys.stderr, flush=True)

    result = {
        "metric": METRIC_NAME,
        "model": a.model,
        "classifier": a.classifier,
        "reference": f"{a.dataset}:{a.reference} ({len(ref)} images)",
        "num_per_class": a.num_per_class,
        "vq_reconstruction_fid": round(floor_fid, 4),
        "real_data_fid": round(data_fid, 4),
        "n_probe": n_probe,
        "reference_wall_s": round(ref_s, 1),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "results": rows,
    }
    widths = [6, 5, 16, 10, 9, 9]
    print(f"{METRIC_NAME}; {rows[0]['n_images']} samples per row vs {result['reference']}")
    print(fmt_row(["steps", "NFE", "classifier-FID", "class acc", "wall s", "img/s"], widths))
    print("-+-".join("-" * w for w in widths))
    for r in rows:
        print(fmt_row([r["steps"], r["nfe"], f"{r['classifier_fid']:.3f}", f"{r['class_accuracy']:.3f}",
                       f"{r['sample_wall_s']:.1f}", f"{r['images_per_s']:.0f}"], widths))
    print(f"reference points: VQ reconstructions {floor_fid:.3f}, real {a.dataset} images {data_fid:.3f} "
          f"({n_probe} images each)")
    if a.json:
        tmp = f"{a.json}.tmp{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=1)
        os.replace(tmp, a.json)
        print(f"wrote {a.json}")
    return result


if __name__ == "__main__":
    try:
        main()
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
