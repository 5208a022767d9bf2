"""classifier-FID (Fashion-MNIST CNN features) and class accuracy of generated images.

    python eval/fid.py --classifier runs/fmnist_classifier --images samples.npz [--reference test]
    # also a standard Inception FID, from a weights file you have (needs torchvision [+ pytorch-fid]):
    python eval/fid.py --classifier runs/fmnist_classifier --images samples.npz --inception pt_inception-2015-12-05.pth

``samples.npz``: ``images`` (N, C, H, W) or (N, H, W), uint8 [0, 255] or float [-1, 1]; ``labels``
(N,) = the class each image was generated for (write it with mdlm.data.images.save_samples_npz).
``--reference``: ``test`` / ``train`` split of Fashion-MNIST, or another .npz (its images).

Prints ONE JSON line, e.g.
    {"metric": "classifier-FID (Fashion-MNIST CNN features)", "classifier_fid_fmnist": 3.21,
     "class_accuracy": 0.87, "n_images": 10000, "n_reference": 10000, "reference": "test", ...}
``classifier_fid_fmnist`` is a Fréchet distance of the classifier's 128-d penultimate features
(mdlm/evaluation/fid.py); it is NOT the Inception FID of papers. ``class_accuracy`` is the share of
generated images that the classifier assigns to their requested class (null without labels).
With ``--inception`` the line adds ``fid_inception_v3`` and ``inception_weights``.
"""

from __future__ import annotations

import json

import torch

from mdlm.cli import ArgumentParser, UserError, positive_int, run_cli
from mdlm.data.images import dataset_to_tensors, load_image_dataset, load_samples_npz
from mdlm.evaluation.classifier import accuracy, load_classifier
from mdlm.evaluation.fid import classifier_features, extract_features, feature_fid
from mdlm.evaluation.image_scoring import METRIC_NAME


def load_reference(ref: str, dataset: str, max_n: int | None) -> torch.Tensor:
    if ref.endswith(".npz"):
        x, _ = load_samples_npz(ref)
    elif ref in ("test", "train"):
        x, _ = dataset_to_tensors(load_image_dataset(dataset)[ref])
    else:
        raise UserError(f"--reference must be test, train or an .npz file, got {ref!r}")
    return x[:max_n] if max_n else x


def parse_args(argv: list[str] | None = None):
    p = ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--classifier", help="classifier dir (recipes/train_classifier.py output)")
    p.add_argument("--images", required=True, help="samples .npz (images [+ labels])")
    p.add_argument("--reference", default="test", help="test, train, or an .npz of reference images")
    p.add_argument("--dataset", default="fashion-mnist", help="data set of --reference test/train")
    p.add_argument("--max-reference", "--max_reference", type=positive_int, default=None, help="use the first N reference images")
    p.add_argument("--inception", default=None, help="Inception-v3 weights file (torchvision or pytorch-fid)")
    p.add_argument("--batch-size", "--batch_size", type=positive_int, default=500)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = p.parse_args(argv)
    if not args.classifier and not args.inception:
        p.error("give --classifier DIR (and/or --inception PATH)")
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    images, labels = load_samples_npz(args.images)
    ref = load_reference(args.reference, args.dataset, args.max_reference)
    if tuple(images.shape[1:]) != tuple(ref.shape[1:]):
        raise ValueError(f"generated images are {tuple(images.shape[1:])}, reference images {tuple(ref.shape[1:])}")
    out: dict = {"metric": METRIC_NAME if args.classifier else "FID (Inception-v3 pool3)"}
    if args.classifier:
        clf = load_classifier(args.classifier, args.device)
        fid = feature_fid(classifier_features(clf, images, args.batch_size), classifier_features(clf, ref, args.batch_size))
        out["classifier_fid_fmnist"] = round(fid, 4)
        out["class_accuracy"] = round(accuracy(clf, images, labels, args.batch_size), 4) if labels is not None else None
    if args.inception:
        from mdlm.evaluation.inception import load_inception_features

        try:
            fn, kind = load_inception_features(args.inception, args.device)
        except ImportError as e:  # torchvision / pytorch-fid missing: one line naming the package
            raise UserError(str(e)) from None
        bs = min(args.batch_size, 100)
        out["fid_inception_v3"] = round(feature_fid(extract_features(fn, images, bs), extract_features(fn, ref, bs)), 4)
        out["inception_weights"] = kind
    out.update({"n_images": int(images.shape[0]), "n_reference": int(ref.shape[0]), "reference": args.reference})
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    run_cli(main)()
