"""Result files of the evaluation scripts: written whole or not at all (a temporary file renamed into
place), so a cut run never leaves half a JSON file where a good one was."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Iterator
from typing import Any


def write_text(path: str | os.PathLike, text: str) -> str:
    """``text`` to ``path`` through a temporary file in the same directory; returns ``path``."""
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)
    return path


def write_json(path: str | os.PathLike, obj: Any, **kwargs: Any) -> str:
    """``obj`` as indented JSON (``json.dumps`` keywords pass through), atomically; returns ``path``."""
    return write_text(path, json.dumps(obj, indent=1, ensure_ascii=False, **kwargs) + "\n")


def write_report(out_dir: str | os.PathLike, stem: str, res: dict, markdown: str) -> None:
    """``OUT/STEM.json`` and ``OUT/STEM.md`` (atomically); the markdown to stdout, the file names to stderr."""
    write_json(os.path.join(out_dir, f"{stem}.json"), res)
    write_text(os.path.join(out_dir, f"{stem}.md"), markdown)
    print(markdown)
    took = f" in {res['wall_seconds']:.1f}s" if "wall_seconds" in res else ""
    print(f"[wrote {out_dir}/{stem}.json and {stem}.md{took}]", file=sys.stderr)


def jsonl_objects(path: str, lines: Iterable[str]) -> Iterator[tuple[int, dict]]:
    """(line number, object) for each non-blank line of a JSONL file; a line that is not a JSON object is one
    UserError naming ``path`` and the line."""
    from ..cli import UserError

    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise UserError(f"{path}:{n}: not valid JSON ({e.msg})") from None
        if not isinstance(obj, dict):
            raise UserError(f"{path}:{n}: each line must be a JSON object")
        yield n, obj
