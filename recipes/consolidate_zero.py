"""Turn a DeepSpeed ZeRO checkpoint (stage 1/2/3, any number of ranks) into a plain checkpoint that resumes on
any world size — one GPU, the CPU, torchrun or DeepSpeed again — with the fp32 master weights AND the Adam state
(DeepSpeed's ``ds_to_universal`` does the un-sharding; ``mdlm.training.zero_resume`` re-packs it).

    python recipes/consolidate_zero.py runs/z3/checkpoint-500 --out runs/z3_1gpu
    python recipes/train_text.py --config recipes/configs/gpt2_350m.yaml --output_dir runs/z3_1gpu \\
        --resume_from_checkpoint auto --gradient_accumulation_steps 2   # 2 ranks' batch on 1 GPU

Writes ``OUT/checkpoint-N`` plus the run's marker and tokenizer; refuses an existing OUT (never overwrites).
"""

from __future__ import annotations

from mdlm.cli import ArgumentParser, UserError, run_cli


@run_cli
def main() -> int:
    p = ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint", help="a checkpoint-N directory written under DeepSpeed (holds 'latest' and global_stepN/)")
    p.add_argument("--out", required=True, help="new run directory to write (must not exist)")
    p.add_argument("--weights-only", action="store_true",
                   help="DeepSpeed's zero_to_fp32 weights with a restarted Adam (zero moments): the comparison "
                        "point; the default keeps the Adam state and continues the loss curve")
    a = p.parse_args()
    import os

    if os.path.exists(a.out):
        raise UserError(f"{a.out} exists; choose a new --out directory (nothing was written)")
    from mdlm.training.zero_resume import consolidate

    ckpt = consolidate(a.checkpoint, a.out, weights_only=a.weights_only)
    what = "fp32 weights, Adam restarted" if a.weights_only else "fp32 weights + Adam state"
    print(f"wrote {ckpt} ({what}); continue with: --output_dir {a.out} --resume_from_checkpoint auto")
    return 0


if __name__ == "__main__":
    main()
