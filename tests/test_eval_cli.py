"""Every eval script ends a bad input with one ``error: ...`` line naming the option or file and exit status 2,
before any model loads, and never replaces an existing output file without ``--overwrite``."""

from __future__ import annotations

import sys

import pytest
from test_image_sample_eval import load_eval_script

from mdlm.cli import run_cli

BAD_VALUES = [  # (script, argv, what the one line must say)
    ("elbo", ["--model", "M", "--seq-len", "-4"], "argument --seq-len: must be ≥ 1, got -4"),
    ("elbo", ["--model", "M", "--seq-len", "0"], "argument --seq-len: must be ≥ 1, got 0"),
    ("elbo", ["--model", "M", "--batch-size", "0"], "argument --batch-size: must be ≥ 1, got 0"),
    ("elbo", ["--model", "M", "--num-samples", "x"], "argument --num-samples: expected an integer, got 'x'"),
    ("ar_ppl", ["--model", "M", "--max-sequences", "0"], "argument --max-sequences: must be ≥ 1"),
    ("sample_text", ["--model", "M", "--out", "o.jsonl", "--gen-length", "0"], "argument --gen-length: must be ≥ 1"),
    ("sample_text", ["--model", "M", "--out", "o.jsonl", "--batch-size", "-1"], "argument --batch-size: must be ≥ 1"),
    ("genppl", ["s.jsonl", "--batch-size", "0"], "argument --batch-size: must be ≥ 1"),
    ("lm_eval_run", ["--model", "M", "--tasks", "t", "--mc-num", "0"], "argument --mc-num: must be ≥ 1"),
    ("lm_eval_run", ["--model", "M", "--tasks", "t", "--limit", "-1"], "argument --limit: must be > 0"),
    ("sft_eval", ["--base", "B", "--adapter", "A", "--out", "O", "--num-elbo", "0"], "argument --num-elbo: must be ≥ 1"),
    ("image_sample_eval", ["--model", "M", "--classifier", "C", "--batch-size", "0"], "argument --batch-size: must be ≥ 1"),
    ("bench_image", ["--model", "M", "--repeats", "0"], "argument --repeats: must be ≥ 1"),
    ("fid", ["--images", "x.npz", "--classifier", "C", "--batch-size", "0"], "argument --batch-size/--batch_size: must be ≥ 1"),
    ("bench_train", ["--steps", "0"], "argument --steps: must be ≥ 1"),
    ("profile_gpu", ["decode", "--batch", "0"], "argument --batch: must be ≥ 1"),
    ("count_ops", ["--gen-length", "8", "--block-length", "16"], "--block-length must be at most --gen-length"),
    ("ablate", ["grid.yaml"], "GRID.yaml needs --out DIR"),
    ("elbo", ["--seq-len", "8"], "the following arguments are required: --model"),
]


def run_main(name: str, argv: list[str], monkeypatch, capsys) -> tuple[int, list[str]]:
    script = load_eval_script(name)
    monkeypatch.setattr(sys, "argv", [f"eval/{name}.py", *argv])
    # what `python eval/NAME.py ARGV` runs: main through run_cli (some scripts apply it under __main__ only, so
    # that Python callers get main's results)
    main = script.main if hasattr(script.main, "__wrapped__") else run_cli(script.main)
    with pytest.raises(SystemExit) as e:
        main()
    return e.value.code, capsys.readouterr().err.strip().splitlines()


@pytest.mark.parametrize("name,argv,says", BAD_VALUES, ids=[f"{n}:{' '.join(a[-2:])}" for n, a, _ in BAD_VALUES])
def test_bad_value_is_one_error_line(name, argv, says, monkeypatch, capsys):
    code, err = run_main(name, argv, monkeypatch, capsys)
    assert code == 2 and len(err) == 1 and err[0].startswith("error: ") and says in err[0], err


OUTPUTS = [  # (script, argv with {out}: an existing file the script would write)
    ("elbo", ["--model", "M", "--json", "{out}"]),
    ("ar_ppl", ["--model", "M", "--json", "{out}"]),
    ("sample_text", ["--model", "M", "--out", "{out}"]),
    ("genppl", ["{out}.jsonl", "--out", "{out}"]),
    ("lm_eval_run", ["--model", "M", "--tasks", "t", "--out", "{out}"]),
    ("image_sample_eval", ["--model", "M", "--classifier", "C", "--json", "{out}"]),
    ("bench_image", ["--model", "M", "--out", "{out}"]),
    ("bench_train", ["--out", "{out}"]),
    ("plot_log", ["state.json", "--out", "{out}"]),
    ("collect_results", ["--out", "{out}"]),
]


@pytest.mark.parametrize("name,argv", OUTPUTS, ids=[n for n, _ in OUTPUTS])
def test_existing_output_is_refused_without_overwrite(name, argv, tmp_path, monkeypatch, capsys):
    out = tmp_path / "result.json"
    out.write_text("keep")
    (tmp_path / "result.json.jsonl").write_text('{"text": "a sample"}\n')
    code, err = run_main(name, [a.replace("{out}", str(out)) for a in argv], monkeypatch, capsys)
    assert code == 2 and err == [f"error: {out} exists; pass --overwrite to replace it, or choose another path"]
    assert out.read_text() == "keep"


def test_sft_eval_refuses_an_out_dir_holding_its_files(tmp_path, monkeypatch, capsys):
    (tmp_path / "sft_eval.md").write_text("keep")
    code, err = run_main("sft_eval", ["--base", "B", "--adapter", "A", "--out", str(tmp_path)], monkeypatch, capsys)
    assert code == 2 and "sft_eval.json exists" not in err[0] and "sft_eval.md exists; pass --overwrite" in err[0]
