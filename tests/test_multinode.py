"""Two "nodes" on one host: two separate ``torchrun --nnodes 2 --nproc_per_node 1 --node_rank R`` launches that
meet at one ``--rdzv-endpoint`` (c10d rendezvous, gloo on the CPU) run recipes/train_text.py unchanged — the
multi-node launch of docs/training_at_scale.md. Both ranks see world size 2 and end with identical weights,
which are the weights the run saved."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parents[1]
from ports import free_port
from test_training import TINY


@pytest.mark.slow
def test_two_single_process_nodes_train_one_model(tmp_path):
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    args = TINY + ["--max_steps", "4", "--save_strategy", "no", "--output_dir", str(tmp_path / "run")]
    procs = [subprocess.Popen(
        [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc_per_node", "1",
         "--node_rank", str(r), "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{port}",
         "--rdzv-id", "mdlm-test", str(ROOT / "tests" / "multinode_worker.py"), str(tmp_path / "dump"), *args],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for r in (0, 1)]
    outs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs[0][-2000:] + outs[1][-2000:]
    ranks = [json.loads((tmp_path / "dump" / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world_size"] for r in ranks] == [2, 2] and [r["global_step"] for r in ranks] == [4, 4]
    w0, w1 = (load_file(tmp_path / "dump" / f"rank{r}.safetensors") for r in (0, 1))
    assert w0.keys() == w1.keys() and all((w0[k] == w1[k]).all() for k in w0)
    saved = load_file(tmp_path / "run" / "model.safetensors")
    init = "model.norm.weight"  # RMSNorm weights start at 1: training moved them, identically on both ranks
    assert not (w0[init] == 1).all() and (saved[init] == w0[init]).all()
