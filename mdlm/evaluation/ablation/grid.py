"""An ablation grid as data: a YAML file of parts, each a section of axes and settings, read into typed
dataclasses (an unknown key, a wrong type or an empty axis is one error naming the file and the key).

    seed: 0
    text_sampling:   {model, judge, steps, schedules, strategies, num_samples, gen_length, batch_size, reference_data}
    text_training:   {schedules, weightings, t_min, max_steps, train_args, keep_runs}
    images:          {model, classifier, num_per_class, references, dataset, data_dir, image_size, channels,
                      max_reference, batch_size, dtype, sampler, class_mix}  # shared by the image parts
    image_sampling:  {steps, schedules, strategies}
    guidance:        {scale, intervals, steps}
    captions:        {steps, scales, interval, num_captions, k}     # text-image checkpoints: caption → image
    image_training:  {vq, schedules, weightings, t_min, max_steps, max_seconds, eval_steps, train_args, keep_runs}

A part runs when its section is present. ``overrides`` (``part.key=value``, the value read as YAML) change
any setting from the command line. The grids of the committed results are in ``eval/ablations/*.yaml``.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from dataclasses import dataclass, field
from typing import Any

import yaml

from ...cli import UserError
from .strategies import STRATEGIES


@dataclass
class TextSampling:
    """Steps × schedule × strategy on a text checkpoint, scored by a judge LM (genppl + unigram entropy)."""

    model: str
    steps: list[int]
    schedules: list[str]
    strategies: list[str]
    judge: str | None = None  # judge LM dir or .gguf (None: SmolLM2-135M); "none": keep samples, score later
    num_samples: int = 64
    gen_length: int = 128
    batch_size: int = 16
    reference_data: str | None = "shakespeare"  # corpus of the real-text row; None: no such row


@dataclass
class TextTraining:
    """Short runs of recipes/train_text.py for schedule × weighting × t_min; validation NELBO of each."""

    schedules: list[str]
    weightings: list[str]
    t_min: list[float]
    max_steps: int
    train_args: str
    keep_runs: str | None = None  # keep the runs' checkpoints in this directory


@dataclass
class Images:
    """What the image parts share: the checkpoint, the classifier and the reference images."""

    classifier: str
    model: str | None = None  # image MDM checkpoint (image_sampling, guidance)
    num_per_class: int = 100
    references: list[str] = field(default_factory=lambda: ["recon", "test"])
    dataset: str = "fashion-mnist"
    data_dir: str | None = None
    image_size: int | None = None  # reference images converted to this size (64×64 RGB sets: 64 and channels 3)
    channels: int | None = None
    max_reference: int | None = None
    batch_size: int = 500
    dtype: str | None = None  # float32 / bfloat16 weights
    sampler: dict[str, Any] = field(default_factory=dict)  # base sampler settings over the checkpoint's defaults
    class_mix: str = "data"  # a row's images per class: the test split's class mix (data) or num_per_class each


@dataclass
class ImageSampling:
    """Steps × schedule × strategy on the image checkpoint (its classifier-free guidance kept)."""

    steps: list[int]
    schedules: list[str]
    strategies: list[str]


@dataclass
class Guidance:
    """No guidance vs constant vs guidance inside τ-intervals, at several step counts (NFE per image)."""

    steps: list[int]
    intervals: list[list[float]]  # [lo, hi] pairs of τ (share still masked) where guidance is on
    scale: float | None = None  # None: the checkpoint's scale, else 1


@dataclass
class Captions:
    """Text-image checkpoints: one image per held-out caption at each (steps, CFG scale); category match and
    retrieval among k (mdlm/evaluation/ablation/captions.py)."""

    steps: list[int]
    scales: list[float]
    interval: list[float] = field(default_factory=lambda: [0.0, 1.0])
    num_captions: int = 300
    k: int = 10


@dataclass
class ImageTraining:
    """Short runs of recipes/train_image.py for schedule × weighting × t_min; NELBO, FID and accuracy of each."""

    schedules: list[str]
    weightings: list[str]
    t_min: list[float]
    max_steps: int
    eval_steps: list[int]
    train_args: str
    vq: str | None = None  # default: IMAGES.model/vq, else .artifacts/vq_tiny
    max_seconds: float | None = None
    keep_runs: str | None = None


PARTS: dict[str, type] = {"text_sampling": TextSampling, "text_training": TextTraining, "images": Images,
                          "image_sampling": ImageSampling, "guidance": Guidance, "captions": Captions,
                          "image_training": ImageTraining}


@dataclass
class Grid:
    """A parsed grid file: the parts it names (None = not run) and the seed of every part."""

    path: str
    seed: int = 0
    text_sampling: TextSampling | None = None
    text_training: TextTraining | None = None
    images: Images | None = None
    image_sampling: ImageSampling | None = None
    guidance: Guidance | None = None
    captions: Captions | None = None
    image_training: ImageTraining | None = None

    def parts(self) -> list[str]:
        return [name for name in PARTS if name != "images" and getattr(self, name) is not None]


def _check_type(value: Any, hint: Any, where: str) -> Any:
    """``value`` checked against the dataclass field type ``hint`` (ints accepted for floats)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _check_type(value, inner, where)
    if origin is list:
        if not isinstance(value, list) or not value:
            raise UserError(f"{where}: expected a non-empty list, got {value!r}")
        return [_check_type(v, args[0], f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise UserError(f"{where}: expected a mapping, got {value!r}")
        return value
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is Any or (isinstance(value, hint) and not (hint is int and isinstance(value, bool))):
        return value
    raise UserError(f"{where}: expected {getattr(hint, '__name__', hint)}, got {value!r}")


def _section(cls: type, raw: Any, where: str):
    if not isinstance(raw, dict):
        raise UserError(f"{where}: expected a mapping of settings")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - names)
    if unknown:
        raise UserError(f"{where}: unknown key(s) {', '.join(unknown)} (valid: {', '.join(sorted(names))})")
    required = [f.name for f in dataclasses.fields(cls)
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    missing = [k for k in required if k not in raw]
    if missing:
        raise UserError(f"{where}: missing key(s) {', '.join(missing)}")
    return cls(**{k: _check_type(v, hints[k], f"{where}.{k}") for k, v in raw.items()})


def apply_overrides(raw: dict, overrides: list[str], path: str) -> dict:
    """``part.key=value`` (value read as YAML) or ``key=value`` (top level) into the raw mapping."""
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise UserError(f"--set {item!r}: expected PART.KEY=VALUE")
        value = yaml.safe_load(text) if text else None
        part, dot, name = key.partition(".")
        if not dot:
            raw[part] = value
        elif part not in PARTS:
            raise UserError(f"--set {item!r}: unknown part {part!r} (valid: {', '.join(PARTS)})")
        elif name == "":
            raise UserError(f"--set {item!r}: expected PART.KEY=VALUE")
        else:
            if not isinstance(raw.get(part), dict):
                raise UserError(f"--set {item!r}: {path} has no {part} section")
            raw[part][name] = value
    return raw


def load_grid(path: str, overrides: list[str] = ()) -> Grid:
    """Read and check the grid file ``path`` with ``overrides`` applied (see the module docstring)."""
    try:
        with open(path, encoding="utf-8") as f:
            raw = yaml.safe_load(f) or {}
    except OSError as e:
        raise UserError(f"cannot read grid {path!r}: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise UserError(f"grid {path!r} is not valid YAML: {e}") from None
    if not isinstance(raw, dict):
        raise UserError(f"grid {path!r} must be a mapping of parts")
    return grid_from_dict(apply_overrides(raw, list(overrides), path), path)


def grid_from_dict(raw: dict, path: str = "<grid>") -> Grid:
    """A :class:`Grid` from an already-read mapping (what :func:`load_grid` checks, the same errors)."""
    unknown = sorted(set(raw) - set(PARTS) - {"seed"})
    if unknown:
        raise UserError(f"{path}: unknown part(s) {', '.join(unknown)} (valid: seed, {', '.join(PARTS)})")
    seed = _check_type(raw.get("seed", 0), int, f"{path}: seed")
    grid = Grid(path, seed, **{k: _section(cls, raw[k], f"{path}: {k}") for k, cls in PARTS.items()
                               if raw.get(k) is not None})
    check_grid(grid)
    return grid


def _at_least(where: str, values: list, low: float) -> None:
    if any(v < low for v in values):
        raise UserError(f"{where}: every value must be ≥ {low:g}, got {values}")


def check_grid(g: Grid) -> None:
    """Values and names: step counts ≥ 1, known schedules and strategies, the image parts' shared section."""
    from ...schedules import get_schedule

    p = g.path
    if not g.parts():
        raise UserError(f"{p}: names no part to run (text_sampling, text_training, image_sampling, guidance, "
                        "captions, image_training)")
    schedules = []
    for name in ("text_sampling", "image_sampling"):
        part = getattr(g, name)
        if part is not None:
            _at_least(f"{p}: {name}.steps", part.steps, 1)
            bad = [s for s in part.strategies if s not in STRATEGIES]
            if bad:
                raise UserError(f"{p}: {name}.strategies: unknown {', '.join(bad)} (valid: {', '.join(STRATEGIES)})")
            schedules += part.schedules
    if g.text_sampling is not None:
        t = g.text_sampling
        _at_least(f"{p}: text_sampling.num_samples/gen_length/batch_size", [t.num_samples, t.gen_length, t.batch_size], 1)
    for name in ("text_training", "image_training"):
        part = getattr(g, name)
        if part is not None:
            _at_least(f"{p}: {name}.max_steps", [part.max_steps], 1)
            _at_least(f"{p}: {name}.t_min", part.t_min, 0)
            schedules += part.schedules
    for s in schedules:
        try:
            get_schedule(s)
        except ValueError as e:
            raise UserError(f"{p}: {e}") from None
    _check_images(g)


def _check_images(g: Grid) -> None:
    p, im = g.path, g.images
    image_parts = [n for n in ("image_sampling", "guidance", "captions", "image_training") if getattr(g, n) is not None]
    if not image_parts:
        return
    if im is None:
        raise UserError(f"{p}: {', '.join(image_parts)} need an images section (classifier, ...)")
    if (g.image_sampling or g.guidance or g.captions) and not im.model:
        raise UserError(f"{p}: image_sampling, guidance and captions need images.model (an image checkpoint)")
    bad = [r for r in im.references if r not in ("test", "train", "recon")]
    if bad:
        raise UserError(f"{p}: images.references: unknown {', '.join(bad)} (valid: test, train, recon)")
    if im.num_per_class < 2 or im.batch_size < 1 or (im.max_reference is not None and im.max_reference < 2):
        raise UserError(f"{p}: images needs num_per_class ≥ 2, batch_size ≥ 1 and max_reference ≥ 2")
    if im.class_mix not in ("data", "uniform"):
        raise UserError(f"{p}: images.class_mix must be data or uniform, got {im.class_mix!r}")
    if im.dtype not in (None, "float32", "bfloat16"):
        raise UserError(f"{p}: images.dtype must be float32 or bfloat16, got {im.dtype!r}")
    if g.guidance is not None:
        _at_least(f"{p}: guidance.steps", g.guidance.steps, 1)
        if any(len(iv) != 2 or not 0 <= iv[0] < iv[1] <= 1 for iv in g.guidance.intervals):
            raise UserError(f"{p}: guidance.intervals must be [lo, hi] pairs with 0 ≤ lo < hi ≤ 1")
    if g.captions is not None:
        c = g.captions
        _at_least(f"{p}: captions.steps", c.steps, 1)
        _at_least(f"{p}: captions.scales", c.scales, 0)
        if len(c.interval) != 2 or not 0 <= c.interval[0] < c.interval[1] <= 1 or c.k < 2 or c.num_captions < c.k:
            raise UserError(f"{p}: captions needs an interval [lo, hi] with 0 ≤ lo < hi ≤ 1, k ≥ 2, num_captions ≥ k")
    if g.image_training is not None:
        t = g.image_training
        _at_least(f"{p}: image_training.eval_steps", t.eval_steps, 1)
        if t.max_seconds is not None and t.max_seconds <= 0:
            raise UserError(f"{p}: image_training.max_seconds must be > 0")


def check_paths(g: Grid) -> None:
    """The checkpoints, classifier and VQ the grid names exist (checked before anything runs); the image
    training VQ defaults to ``images.model``/vq, else .artifacts/vq_tiny."""
    p, im = g.path, g.images
    if g.text_sampling is not None and not os.path.isdir(g.text_sampling.model):
        raise UserError(f"{p}: text_sampling.model {g.text_sampling.model!r} is not a directory (a text checkpoint)")
    if im is None:
        return
    for key, path in (("images.model", im.model), ("images.classifier", im.classifier)):
        if path and not os.path.isdir(path):
            raise UserError(f"{p}: {key} {path!r} is not a directory")
    t = g.image_training
    if t is not None:
        if t.vq is None:
            own = os.path.join(im.model, "vq") if im.model else None
            t.vq = own if own and os.path.isdir(own) else os.path.join(".artifacts", "vq_tiny")
        if not os.path.isdir(t.vq):
            raise UserError(f"{p}: image_training.vq {t.vq!r} is not a directory (the VQ tokenizer the runs train on)")
