"""A compiled bf16 run on a TF32 GPU: transformers' TrainingArguments switch TF32 on through torch's new API, and the
recipes' argument parsing keeps the setting readable through the legacy getter that ``torch.compile``'s max-autotune
uses (before, ``--torch_compile_mode max-autotune-no-cudagraphs`` stopped there). In a subprocess: the settings are
process-global."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(code: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), CUDA_VISIBLE_DEVICES="")
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env,
                          timeout=120, check=False)


def test_compiled_bf16_arguments_leave_the_matmul_precision_readable(tmp_path):
    out = _run(f"""
        import torch
        import transformers.training_args as ta
        from transformers import TrainingArguments
        from mdlm.cli import parse_config_and_args
        ta.is_torch_tf32_available = lambda: True   # what a TF32 GPU reports
        ta.enable_tf32 = ta.enable_tf32.__wrapped__  # uncached, as in a fresh run
        parse_config_and_args([TrainingArguments], ["--output_dir", r"{tmp_path}", "--torch_compile", "true",
                                                    "--bf16", "true", "--use_cpu", "true", "--report_to", "none"])
        print(torch.backends.fp32_precision, torch.get_float32_matmul_precision(), torch.backends.cuda.matmul.allow_tf32)
    """)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[-3:] == ["tf32", "high", "True"]  # TF32 stays on, and both APIs read it back
