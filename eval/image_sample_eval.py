"""Sample from a class-conditional image MDM and score the samples: classifier-FID (Fashion-MNIST
classifier features) and class accuracy, for several step counts.

    python eval/image_sample_eval.py --model runs/fmnist_mdm_tiny --classifier .artifacts/fmnist_classifier \\
        --steps 8 16 32 --num-per-class 100 --json runs/fmnist_mdm_tiny/sample_eval.json
    # sampler overrides (defaults: the checkpoint's generation_config.json), e.g. no guidance:
    python eval/image_sample_eval.py --model DIR --classifier CLF --steps 16 --cfg-scale 0 --temperature 1
    # compare with the VQ reconstructions of the test images (no tokenizer floor), and also with the test images:
    python eval/image_sample_eval.py --model DIR --classifier CLF --steps 8 16 --reference recon test

For each step count: ``num_per_class`` images of every class are generated with the one sampler
(mdlm.pipelines.image.generate_images → mdlm.sampling.generate), decoded with the checkpoint's VQ and
compared with reference images through the penultimate features of the classifier
(recipes/train_classifier.py). Metric functions are those of eval/fid.py / mdlm.metrics:
``classifier-FID`` is a Fréchet distance of that classifier's 128-d features — NOT the Inception FID
of papers. ``class acc`` = share of samples that the classifier assigns to the class they were
generated for.

``--reference`` (one or more; the first is the headline ``classifier_fid``, every one is reported in
``classifier_fid_by_reference``):

* ``test`` (default) / ``train``: the real images of that split of ``--dataset``.
* ``recon``: the VQ reconstructions (encode → decode through the checkpoint's own VQ) of the test
  images. Samples are decoded through the same VQ, so they can never be closer to the real images
  than the reconstructions are: against ``test`` every setting sits above the tokenizer's floor
  (≈ 72.8 for .artifacts/vq_tiny), which hides the differences between sampler settings. Against
  ``recon`` a perfect sampler of the tokenizer's code distribution scores ≈ 0 (up to the metric's
  sampling noise), so differences between settings become visible.

Reference points, per reference R, at the sample size of one row (``n_probe`` images):
``vq_reconstructions`` = FID(VQ reconstructions of the first n_probe images of R's split, R) — for
``test`` the tokenizer's floor, for ``recon`` only the metric's noise (exactly 0 when n_probe = |R|);
``real_images`` = FID(n_probe real images of the other split, R) — for ``test`` the metric's noise,
for ``recon`` the tokenizer error. The headline reference's two points are also ``vq_reconstruction_fid``
and ``real_data_fid``.

Prints a table and writes ``--json`` (one record per step count + the settings, wall times). The
functions :func:`load_checkpoint`, :class:`ImageScorer` and :func:`sample_and_score` are what
eval/ablate.py uses to score many sampler settings with one set of reference features.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import mdlm  # noqa: E402,F401
from mdlm.cli import run_cli  # noqa: E402
from fid import METRIC_NAME  # noqa: E402  (eval/fid.py: the metric's one name)
from mdlm.data.images import dataset_to_tensors, load_fashion_mnist, load_image_dataset, save_samples_npz  # noqa: E402
from mdlm.metrics.classifier import accuracy, load_classifier  # noqa: E402
from mdlm.metrics.fid import classifier_features, feature_fid  # noqa: E402
from mdlm.pipelines import load_for_generation  # noqa: E402
from mdlm.pipelines.image import ImageModelInfo, generate_images, image_model_info, load_image_vq  # noqa: E402
from mdlm.pipelines.text import sampler_config_from  # noqa: E402
from mdlm.sampling import add_generation_arguments, given_settings  # noqa: E402

Tensor = torch.Tensor
REFERENCES = ("test", "train", "recon")
RECON_SPLIT = "test"  # ``recon`` = reconstructions of this split
SAMPLER_KEYS = ("sampler", "schedule", "temperature", "choice_temperature", "confidence", "remasking", "cfg_scale",
                "cfg_interval")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="image MDM checkpoint dir (recipes/train_image.py output)")
    p.add_argument("--classifier", required=True, help="classifier dir (recipes/train_classifier.py output)")
    p.add_argument("--steps", type=int, nargs="+", default=[8, 16, 32])
    p.add_argument("--num-per-class", type=int, default=100)
    p.add_argument("--dataset", default="fashion-mnist", help="reference data set (fashion-mnist, digits, a folder)")
    p.add_argument("--data-dir", default=None, help="Fashion-MNIST IDX dir (default: $MDLM_FASHION_MNIST_DIR or Debian's)")
    p.add_argument("--reference", nargs="+", default=["test"], choices=REFERENCES,
                   help="reference image set(s); the first is the headline classifier_fid (recon = VQ reconstructions "
                        "of the test images)")
    p.add_argument("--max-reference", type=int, default=None, help="use the first N images of each reference split")
    p.add_argument("--batch-size", type=int, default=500, help="rows per sampler call")
    p.add_argument("--json", default=None, help="write the results here")
    p.add_argument("--save-npz", default=None, help="directory: also write samples_steps{S}.npz for eval/fid.py")
    p.add_argument("--force", action="store_true", help="overwrite --json / npz files")
    g = p.add_argument_group("sampler overrides (default: the checkpoint's generation_config.json)")
    a_flags = add_generation_arguments(g, exclude=("steps",))
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    g.add_argument("--dtype", choices=["float32", "bfloat16"], default=None)
    a = p.parse_args(argv)
    a.sampler_flags = a_flags
    if a.num_per_class < 2 or min(a.steps) < 1:
        p.error("--num-per-class must be ≥ 2 and every --steps ≥ 1")
    if a.batch_size < 1 or (a.max_reference is not None and a.max_reference < 2):
        p.error("--batch-size must be ≥ 1 and --max-reference ≥ 2")
    a.reference = list(dict.fromkeys(a.reference))  # unique, first one kept first
    for path in [a.json] if a.json else []:
        if os.path.exists(path) and not a.force:
            p.error(f"{path} exists; pass --force to replace it")
    return a


def sampler_overrides(a: argparse.Namespace) -> dict[str, Any]:
    """The sampler flags of ``a`` that were given (None = the checkpoint's default)."""
    return given_settings(a, a.sampler_flags)


def check_dirs(model: str | None, classifier: str | None) -> None:
    """One clear error for a checkpoint / classifier path that is not a directory."""
    for flag, path in (("--model", model), ("--classifier", classifier)):
        if path is not None and not os.path.isdir(path):
            raise ValueError(f"{flag} {path!r} is not a directory")


def load_reference_data(dataset: str, data_dir: str | None):
    """The image DatasetDict (train/test) of ``dataset``."""
    if dataset.lower().replace("_", "-") in ("fashion-mnist", "fmnist"):
        return load_fashion_mnist(data_dir)
    return load_image_dataset(dataset)


# ---- the checkpoint --------------------------------------------------------------------------------


@dataclass
class ImageCheckpoint:
    """An image MDM with its VQ and sampler defaults, ready to sample."""

    path: str
    model: torch.nn.Module
    info: ImageModelInfo
    vq: Any
    defaults: dict[str, Any]
    device: torch.device

    @property
    def vq_key(self) -> str:
        """What identifies the VQ (its SHA-256 when the config records it) for cached reconstructions."""
        return self.info.vq_sha256 or os.path.abspath(os.path.join(self.path, self.info.vq_path))


def load_checkpoint(path: str, device: str | torch.device, dtype: torch.dtype | None = None) -> ImageCheckpoint:
    """Model, VQ and generation defaults of an image checkpoint dir (ValueError if it is not one)."""
    check_dirs(path, None)
    loaded = load_for_generation(path, device=str(device), dtype=dtype)
    info = image_model_info(loaded.model.config)
    dev = next(loaded.model.parameters()).device
    vq = load_image_vq(loaded.base_dir, info, device=dev)
    return ImageCheckpoint(path, loaded.model, info, vq, loaded.defaults, dev)


@torch.no_grad()
def reconstruct(vq, images: Tensor, batch_size: int) -> Tensor:
    """(N, C, H, W) in [-1, 1] → their VQ reconstructions (encode → decode), float32 on the CPU."""
    dev = next(vq.parameters()).device if hasattr(vq, "parameters") else torch.device("cpu")
    return torch.cat([vq.decode(vq.encode(images[i : i + batch_size].to(dev))).float().cpu()
                      for i in range(0, images.shape[0], batch_size)])


# ---- reference features ----------------------------------------------------------------------------


class ImageScorer:
    """Classifier features of the reference image sets, computed once and reused for every sample set.

    ``data``: a DatasetDict with ``train`` and ``test`` image splits. Real references are cached by
    split, ``recon`` by the VQ's key (runs sharing a tokenizer share the reconstructions).
    """

    def __init__(self, clf, data, *, max_reference: int | None = None, batch_size: int = 500, dataset: str = ""):
        self.clf, self.data, self.dataset = clf, data, dataset
        self.max_reference, self.batch_size = max_reference, batch_size
        self._images: dict[tuple[str, int | None], Tensor] = {}
        self._feats: dict[str, np.ndarray] = {}
        self._points: dict[tuple[str, str, int], dict[str, float]] = {}

    def images(self, split: str, n: int | None = None) -> Tensor:
        """The first ``n`` (default: ``max_reference``, else all) images of ``split``: (N, C, H, W)."""
        n = self.max_reference if n is None else n
        key = (split, n)
        if key not in self._images:
            ds = self.data[split]
            self._images[key] = dataset_to_tensors(ds.select(range(min(n, len(ds)))) if n else ds)[0]
        return self._images[key]

    def features(self, images: Tensor) -> np.ndarray:
        """(N, C, H, W) → (N, d) classifier features."""
        return classifier_features(self.clf, images, self.batch_size)

    @staticmethod
    def split_of(reference: str) -> str:
        return RECON_SPLIT if reference == "recon" else reference

    def reference_features(self, reference: str, ckpt: ImageCheckpoint | None = None) -> np.ndarray:
        """(N_ref, d) features of ``reference`` (``recon`` needs the checkpoint whose VQ reconstructs)."""
        if reference not in REFERENCES:
            raise ValueError(f"unknown reference {reference!r}; valid: {', '.join(REFERENCES)}")
        if reference != "recon":
            key = reference
        elif ckpt is None:
            raise ValueError("the 'recon' reference needs a checkpoint (its VQ reconstructs the test images)")
        else:
            key = f"recon:{ckpt.vq_key}"
        if key not in self._feats:
            x = self.images(self.split_of(reference))
            self._feats[key] = self.features(reconstruct(ckpt.vq, x, self.batch_size) if reference == "recon" else x)
        return self._feats[key]

    def describe(self, reference: str) -> str:
        n = len(self.images(self.split_of(reference)))
        what = f"{self.dataset}:{reference}"
        if reference == "recon":
            what = f"VQ reconstructions of {self.dataset}:{RECON_SPLIT}"
        return f"{what} ({n} images)"

    def reference_points(self, reference: str, ckpt: ImageCheckpoint, n_probe: int) -> dict[str, float]:
        """FID of n_probe VQ reconstructions (of R's split) and of n_probe real images of the other split
        against reference R (see the module docstring)."""
        key = (reference, ckpt.vq_key, n_probe)
        if key not in self._points:
            ref = self.reference_features(reference, ckpt)
            split = self.split_of(reference)
            other = "train" if split == "test" else "test"
            recon = reconstruct(ckpt.vq, self.images(split)[:n_probe], self.batch_size)
            self._points[key] = {"vq_reconstructions": round(feature_fid(self.features(recon), ref), 4),
                                 "real_images": round(feature_fid(self.features(self.images(other, n_probe)), ref), 4)}
        return dict(self._points[key])

    def score(self, images: Tensor, labels: Tensor, references: list[str], ckpt: ImageCheckpoint) -> dict[str, Any]:
        """classifier-FID of ``images`` against each reference, and class accuracy w.r.t. ``labels``."""
        feats = self.features(images)
        fids = {r: round(feature_fid(feats, self.reference_features(r, ckpt)), 4) for r in references}
        return {"fid": fids, "class_accuracy": round(accuracy(self.clf, images, labels, self.batch_size), 4)}


# ---- sampling --------------------------------------------------------------------------------------


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def sample_and_score(
    ckpt: ImageCheckpoint, scorer: ImageScorer, *, steps: int, overrides: dict[str, Any], num_per_class: int,
    seed: int, batch_size: int, references: list[str], npz_path: str | None = None,
) -> dict[str, Any]:
    """Generate ``num_per_class`` images of every class with the checkpoint's sampler defaults +
    ``overrides`` at ``steps`` steps, then score them. One result row (see the module docstring)."""
    config, _ = sampler_config_from(ckpt.defaults, {**overrides, "steps": steps})
    g = torch.Generator(device=ckpt.device).manual_seed(seed)
    classes = list(range(ckpt.info.layout.num_classes))
    _sync(ckpt.device)
    t = time.perf_counter()
    out = generate_images(ckpt.model, ckpt.info.layout, ckpt.vq, classes, num_per_class, config, g, batch_size=batch_size)
    _sync(ckpt.device)
    dt = time.perf_counter() - t
    s = scorer.score(out.images, out.labels, references, ckpt)
    if npz_path:
        save_samples_npz(npz_path, out.images, out.labels)
    sampler = {k: v for k, v in config.to_legacy_dict().items() if k in SAMPLER_KEYS}
    sampler["cfg_interval"] = list(sampler["cfg_interval"])
    return {"steps": steps, "nfe": out.nfe, "classifier_fid": s["fid"][references[0]],
            "classifier_fid_by_reference": s["fid"], "class_accuracy": s["class_accuracy"],
            "n_images": len(out.labels), "sample_wall_s": round(dt, 2), "images_per_s": round(len(out.labels) / dt, 1),
            "sampler": sampler}


def fmt_row(cols: list, widths: list[int]) -> str:
    return " | ".join(str(c).rjust(w) for c, w in zip(cols, widths))


def print_table(result: dict[str, Any]) -> None:
    rows, refs = result["results"], result["references"]
    fid_cols = ["classifier-FID"] if len(refs) == 1 else [f"FID vs {r}" for r in refs]
    widths = [6, 5, *[max(14, len(c)) for c in fid_cols], 10, 9, 9]
    print(f"{METRIC_NAME}; {rows[0]['n_images']} samples per row vs {result['reference']}")
    print(fmt_row(["steps", "NFE", *fid_cols, "class acc", "wall s", "img/s"], widths))
    print("-+-".join("-" * w for w in widths))
    for r in rows:
        fids = [f"{r['classifier_fid_by_reference'][ref]:.3f}" for ref in refs]
        print(fmt_row([r["steps"], r["nfe"], *fids, f"{r['class_accuracy']:.3f}", f"{r['sample_wall_s']:.1f}",
                       f"{r['images_per_s']:.0f}"], widths))
    for ref, pts in result["reference_points"].items():
        print(f"reference points vs {ref}: VQ reconstructions {pts['vq_reconstructions']:.3f}, real "
              f"{'train' if ImageScorer.split_of(ref) == 'test' else 'test'} images {pts['real_images']:.3f} "
              f"({result['n_probe']} images each)")


def write_json(obj: Any, path: str) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=1)
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> dict:
    a = parse_args(argv)
    check_dirs(a.model, a.classifier)
    ckpt = load_checkpoint(a.model, a.device, getattr(torch, a.dtype) if a.dtype else None)
    clf = load_classifier(a.classifier, ckpt.device)
    if clf.config.num_classes != ckpt.info.layout.num_classes:
        raise ValueError(f"the classifier has {clf.config.num_classes} classes, the model {ckpt.info.layout.num_classes}")

    t0 = time.perf_counter()
    scorer = ImageScorer(clf, load_reference_data(a.dataset, a.data_dir), max_reference=a.max_reference,
                         batch_size=a.batch_size, dataset=a.dataset)
    n_ref = len(scorer.images(scorer.split_of(a.reference[0])))
    n_probe = min(n_ref, a.num_per_class * ckpt.info.layout.num_classes)
    points = {r: scorer.reference_points(r, ckpt, n_probe) for r in a.reference}
    ref_s = time.perf_counter() - t0

    rows = []
    for steps in a.steps:
        npz = None
        if a.save_npz:
            os.makedirs(a.save_npz, exist_ok=True)
            npz = os.path.join(a.save_npz, f"samples_steps{steps}.npz")
            if os.path.exists(npz) and not a.force:
                raise ValueError(f"{npz} exists; pass --force to replace it")
        r = sample_and_score(ckpt, scorer, steps=steps, overrides=sampler_overrides(a), num_per_class=a.num_per_class,
                             seed=a.seed, batch_size=a.batch_size, references=a.reference, npz_path=npz)
        rows.append(r)
        print(f"steps {steps}: classifier-FID {r['classifier_fid']:.3f} (vs {a.reference[0]}), class acc "
              f"{r['class_accuracy']:.3f}, {r['sample_wall_s']:.1f}s", file=sys.stderr, flush=True)

    primary = points[a.reference[0]]
    result = {
        "metric": METRIC_NAME,
        "model": a.model,
        "classifier": a.classifier,
        "reference": scorer.describe(a.reference[0]),
        "references": a.reference,
        "reference_descriptions": {r: scorer.describe(r) for r in a.reference},
        "num_per_class": a.num_per_class,
        "vq_reconstruction_fid": primary["vq_reconstructions"],
        "real_data_fid": primary["real_images"],
        "reference_points": points,
        "n_probe": n_probe,
        "reference_wall_s": round(ref_s, 1),
        "device": torch.cuda.get_device_name(ckpt.device) if ckpt.device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "results": rows,
    }
    print_table(result)
    if a.json:
        write_json(result, a.json)
        print(f"wrote {a.json}")
    return result


if __name__ == "__main__":
    run_cli(main)()
