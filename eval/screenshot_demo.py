"""Screenshots of the web demo's two tabs mid-generation (and finished), in a headless Chromium.

    python eval/screenshot_demo.py --model runs/shakespeare_tiny --model runs/digits_mdm \\
        --prompt "ROMEO:" --out-dir docs/images [--overwrite]

Starts the demo in this process on a free 127.0.0.1 port with --slow-motion seconds per step (so a fast model
can be caught mid-way), opens it with Playwright driving the system's Chromium (Debian: apt-get install -y
chromium; pip install -e ".[demo]"), clicks Generate on each tab and writes demo_<tab>_mid.png (the first step
at or past --at of the budget) and demo_<tab>_done.png. Prints what the status line said for each.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import mdlm  # noqa: E402,F401
from mdlm.cli import ArgumentParser, UserError, refuse_overwrite, run_cli  # noqa: E402


def parse_args(argv=None):
    p = ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", action="append", required=True, help="text and/or image checkpoint dir (repeat)")
    p.add_argument("--prompt", default="", help="text tab prompt")
    p.add_argument("--gen-length", type=int, help="text tab: answer length (default: the checkpoint's)")
    p.add_argument("--steps", type=int, help="text tab: steps (default: the checkpoint's)")
    p.add_argument("--temperature", type=float, help="text tab: temperature (default: the checkpoint's)")
    p.add_argument("--strategy", help="text tab: unmasking strategy (default: the checkpoint's)")
    p.add_argument("--seed", type=int, help="text tab: seed (default 0)")
    p.add_argument("--out-dir", default="docs/images")
    p.add_argument("--slow-motion", type=float, default=0.2, help="seconds per shown step")
    p.add_argument("--at", type=float, default=0.5, help="mid screenshot at this fraction of the steps")
    p.add_argument("--overwrite", action="store_true")
    return p.parse_args(argv)


@run_cli
def main() -> int:
    a = parse_args()
    from mdlm.demo.browser import capture_tab, chromium_page, find_chromium
    from mdlm.demo.models import load_demo_models
    from mdlm.demo.serve import serve_in_background

    chromium = find_chromium()
    if chromium is None:
        raise UserError("no Chromium found (apt-get install -y chromium)")
    models = load_demo_models(a.model)
    tabs = [t for t, m in (("text", models.text), ("image", models.image)) if m is not None]
    paths = {t: [os.path.join(a.out_dir, f"demo_{t}_{w}.png") for w in ("mid", "done")] for t in tabs}
    for p in [q for pair in paths.values() for q in pair]:
        refuse_overwrite(p, a.overwrite)
    os.makedirs(a.out_dir, exist_ok=True)
    app, url = serve_in_background(models, slow_motion=a.slow_motion)
    try:
        with chromium_page(chromium) as page:
            sliders = {k: v for k, v in (("text-length", a.gen_length), ("text-steps", a.steps),
                                         ("text-temperature", a.temperature), ("text-seed", a.seed)) if v is not None}
            choices = {"text-strategy": a.strategy} if a.strategy else None
            for t in tabs:
                text = t == "text"
                cap = capture_tab(page, url, t, *paths[t], prompt=a.prompt if text else None, frac=a.at,
                                  sliders=sliders if text else None, choices=choices if text else None)
                print(f"{t}: mid '{cap.mid_status}' → {paths[t][0]}; end '{cap.done_status}' → {paths[t][1]}")
    finally:
        app.close()
    return 0


if __name__ == "__main__":
    main()
