"""Image sampling speed of a class-conditional image MDM: images/s and NFE per image, CFG off / constant / interval.

    python eval/bench_image.py --model runs/fmnist_mdm_gpu --device cuda --dtype bfloat16 --out bench_image.json
    python eval/bench_image.py --model runs/fmnist_mdm_tiny --steps 4 8 --batch 32 --repeats 1      # CPU, seconds
    python eval/bench_image.py --model DIR --cfg-scale 2 --cfg-interval 0.5 1.0 --steps 8 16 32 64

For every step count (default 8, 16, 32) and guidance setting — ``off`` (cfg_scale 0), ``constant``
(the scale on every step) and ``interval`` (the scale only while τ = share of the image still masked
lies in (LO, HI]) — one batch of ``--batch`` class-conditional images (classes 0, 1, …, C−1, 0, …) is
sampled with the checkpoint's other sampler defaults (mdlm.pipelines.image.generate_images → the one
sampler) and decoded by the checkpoint's VQ into float images on the CPU: the timed span is exactly that
call. One untimed warm-up call per setting, then ``--repeats`` timed calls; CUDA is synchronised before
and after each. Reported: NFE per image (network passes per image; the unconditional CFG pass counts one,
the interval skips it outside (LO, HI]), the median batch time, images/s = batch / median time and
ms per sampler step. ``--cfg-scale`` defaults to the checkpoint's scale (1 when it has none).

Prints a markdown table; ``--out JSON`` writes ``{"meta": {...}, "rows": [...]}`` with the device name,
torch / transformers versions, date and command line (refuses an existing file without ``--overwrite``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from typing import Any

import torch

import mdlm  # noqa: F401
from mdlm.cli import ArgumentParser, positive_float, positive_int, refuse_overwrite, run_cli
from mdlm.evaluation.files import write_json
from mdlm.pipelines import load_for_generation
from mdlm.pipelines.image import generate_images, image_model_info, load_image_vq
from mdlm.pipelines.text import sampler_config_from


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = ArgumentParser(description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="image MDM checkpoint dir (recipes/train_image.py output)")
    p.add_argument("--steps", type=positive_int, nargs="+", default=[8, 16, 32])
    p.add_argument("--batch", type=positive_int, default=256, help="images per timed call")
    p.add_argument("--cfg-scale", type=positive_float, default=None, help="guidance scale (default: the checkpoint's, else 1)")
    p.add_argument("--cfg-interval", type=float, nargs=2, default=[0.0, 0.5], metavar=("LO", "HI"),
                   help="τ interval of the 'interval' rows (default 0 0.5: guidance once half the image is decided)")
    p.add_argument("--repeats", type=positive_int, default=3, help="timed calls per setting (after one warm-up)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32", help="the MDM's weights")
    p.add_argument("--settings", nargs="+", choices=["off", "constant", "interval"],
                   default=["off", "constant", "interval"], help="which guidance settings to time")
    p.add_argument("--sampler", action="append", default=[], metavar="KEY=VALUE",
                   help="a sampler setting over the checkpoint's defaults (VALUE read as YAML; repeatable), e.g. "
                        "temperature=0 choice_temperature=0 cuda_graphs=true for greedy steps replayed as CUDA graphs")
    p.add_argument("--out", help="write the results as JSON here")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    a = p.parse_args(argv)
    a.sampler_overrides = parse_sampler_overrides(p, a.sampler)
    a.command = "python eval/bench_image.py " + " ".join(sys.argv[1:] if argv is None else argv)
    if not 0.0 <= a.cfg_interval[0] < a.cfg_interval[1] <= 1.0:
        p.error("--cfg-interval needs 0 ≤ LO < HI ≤ 1")
    refuse_overwrite(a.out, a.overwrite)
    return a


def parse_sampler_overrides(p: argparse.ArgumentParser, items: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` items → a dict (VALUE read as YAML: 0, true, [0, 1] …); a malformed item is a usage error."""
    import yaml

    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key:
            p.error(f"--sampler {item!r}: expected KEY=VALUE")
        out[key] = yaml.safe_load(text)
    return out


def guidance_settings(scale: float, interval: tuple[float, float]) -> list[tuple[str, float, tuple[float, float]]]:
    """(name, cfg_scale, cfg_interval) of the three measured settings."""
    return [("off", 0.0, (0.0, 1.0)), ("constant", scale, (0.0, 1.0)), ("interval", scale, tuple(interval))]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_setting(model, info, vq, config, class_ids: list[int], seed: int, repeats: int,
                 device: torch.device) -> tuple[list[float], int]:
    """One warm-up call, then ``repeats`` timed calls of generate_images: (seconds per call, NFE per image)."""
    times: list[float] = []
    nfe = 0
    for r in range(repeats + 1):
        g = torch.Generator(device=device).manual_seed(seed)
        _sync(device)
        t0 = time.perf_counter()
        out = generate_images(model, info.layout, vq, class_ids, 1, config, g)
        _sync(device)
        if r:  # the first call warms up (kernels, allocator, autotuning)
            times.append(time.perf_counter() - t0)
        nfe = out.nfe
    return times, nfe


def run_bench(a: argparse.Namespace) -> dict[str, Any]:
    if not os.path.isdir(a.model):
        raise ValueError(f"--model {a.model!r} is not a directory")
    loaded = load_for_generation(a.model, device=a.device, dtype=getattr(torch, a.dtype))
    info = image_model_info(loaded.model.config)
    device = next(loaded.model.parameters()).device
    vq = load_image_vq(loaded.base_dir, info, device=device)
    scale = a.cfg_scale if a.cfg_scale is not None else float(loaded.defaults.get("guidance_scale", loaded.defaults.get("cfg_scale")) or 1.0)
    class_ids = [i % info.layout.num_classes for i in range(a.batch)]
    rows = []
    for steps in a.steps:
        for name, s, interval in guidance_settings(scale, tuple(a.cfg_interval)):
            if name not in a.settings:
                continue
            config, _ = sampler_config_from(loaded.defaults, {**a.sampler_overrides, "steps": steps, "cfg_scale": s,
                                                              "cfg_interval": interval})
            times, nfe = time_setting(loaded.model, info, vq, config, class_ids, a.seed, a.repeats, device)
            med = statistics.median(times)
            rows.append({"cfg": name, "cfg_scale": s, "cfg_interval": list(interval), "steps": steps,
                         "nfe_per_image": nfe, "batch": a.batch, "seconds_median": round(med, 4),
                         "seconds_all": [round(t, 4) for t in times], "images_per_s": round(a.batch / med, 1),
                         "ms_per_step": round(1000 * med / steps, 2)})
            print(f"  {name:<9} steps {steps:>3}: NFE/image {nfe:>3} | {a.batch / med:9.1f} images/s", file=sys.stderr,
                  flush=True)
    return {"meta": meta(a, loaded.model, device, scale, loaded.defaults), "rows": rows}


def meta(a: argparse.Namespace, model, device: torch.device, scale: float, defaults: dict) -> dict[str, Any]:
    """What made the figures: model, device, versions, date, command."""
    import transformers

    sampler = {k: v for k, v in defaults.items() if not k.endswith("_token_id")}
    return {"model": a.model, "parameters": sum(p.numel() for p in model.parameters()),
            "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu", "dtype": a.dtype,
            "sampler_overrides": a.sampler_overrides, "settings": a.settings,
            "batch": a.batch, "repeats": a.repeats, "cfg_scale": scale, "cfg_interval": list(a.cfg_interval),
            "checkpoint_sampler": sampler, "torch": torch.__version__, "cuda": torch.version.cuda,
            "transformers": transformers.__version__, "date": time.strftime("%Y-%m-%d %H:%M:%S"),
            "command": a.command}


def markdown(res: dict[str, Any]) -> str:
    m = res["meta"]
    lines = [f"Image sampling speed: `{m['model']}` ({m['parameters'] / 1e6:.1f}M parameters), {m['device']}, "
             f"{m['dtype']}, batch {m['batch']}, median of {m['repeats']} after one warm-up; time = sampling + VQ "
             f"decode. CFG scale {m['cfg_scale']:g}; interval = τ ∈ "
             f"({m['cfg_interval'][0]:g}, {m['cfg_interval'][1]:g}].",
             "", "| CFG | steps | NFE/image | s/batch | images/s | ms/step |", "|---|---:|---:|---:|---:|---:|"]
    for r in res["rows"]:
        lines.append(f"| {r['cfg']} | {r['steps']} | {r['nfe_per_image']} | {r['seconds_median']:.3f} | "
                     f"{r['images_per_s']:,.0f} | {r['ms_per_step']:.1f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    a = parse_args(argv)
    res = run_bench(a)
    print(markdown(res))
    if a.out:
        write_json(a.out, res)
        print(f"wrote {a.out}")
    return res


if __name__ == "__main__":
    run_cli(main)()
