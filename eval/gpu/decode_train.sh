# Call 1 of the decoding benchmark (issue 17): train, at equal tokens (same data, steps, batch, sequence length,
# optimizer, seed), the ~125M MDM and block-diffusion (BD3) models of block size 4, 16 and 64 on
# .data/shakespeare_bible, two runs after another on each of two GPUs (CUDA_VISIBLE_DEVICES), and return their
# validation NELBO (eval_metrics.json) and logs in decode_train.tgz. The models stay in runs/decode/s$STEPS/ for call 2
# (eval/gpu/decode_bench.sh) while the machine is warm (~30 s after a call).
#   run(command="bash eval/gpu/decode_train.sh", kind="nvidia-h200-x2", carry=[".whl", ".data/shakespeare_bible.tgz"])
#   (.data/shakespeare_bible.tgz: `tar czf .data/shakespeare_bible.tgz -C .data shakespeare_bible`, 7 MB)
#   DRY=1 DRY_RUNS=/tmp/dry bash eval/gpu/decode_train.sh   # CPU dry run here: tiny models, 3 steps, ~1 min
#   STEPS=1500 SECOND=0 bash eval/gpu/decode_train.sh       # only the MDM and BD3-16, 1500 steps each (358 s on 2×H200)
# STEPS (default 600) × 32 sequences × SEQ_LEN (1088 = 1024 generated + 64 of prompt) tokens per run.
OUT=${OUT:-out_decode_train}; DEADLINE=${DEADLINE:-560}
source eval/gpu/common.sh
STEPS=${STEPS:-600}; SEQ_LEN=${SEQ_LEN:-1088}; RUNS=${RUNS:-runs/decode/s$STEPS}  # runs of other STEPS are never reused
if [ ! -d .data/shakespeare_bible ] && [ -f .data/shakespeare_bible.tgz ]; then  # carried packed (7 MB, not 28)
  tar xzf .data/shakespeare_bible.tgz -C .data
fi
if [ "${DRY:-0}" = 1 ] && [ ! -f .data/shakespeare_bible/dataset_dict.json ]; then  # a fresh clone: build it (~10 s)
  python3 recipes/build_corpus.py --dataset shakespeare+bible --out .data/shakespeare_bible | tail -n 1
fi
need_files "carry .data/shakespeare_bible (python recipes/build_corpus.py --dataset shakespeare+bible --out .data/shakespeare_bible)" \
  .data/shakespeare_bible/dataset_dict.json
C="--config recipes/configs/gpt2_125m.yaml --dataset .data/shakespeare_bible --seq_len $SEQ_LEN --max_steps $STEPS
   --per_device_train_batch_size 32
   --eval_strategy no --save_strategy no --logging_steps 50 --sample_on_end 0 --seed 0"
if [ "${DRY:-0}" = 1 ]; then  # tiny model on the CPU: checks the commands, not the figures
  STEPS=3; SEQ_LEN=128; RUNS=${DRY_RUNS:-$(mktemp -d)/decode}
  C="--config recipes/configs/gpt2_125m.yaml --dataset .data/shakespeare_bible --seq_len 128 --max_steps 3
     --hidden_size 64 --num_hidden_layers 2 --num_attention_heads 2 --intermediate_size 128
     --per_device_train_batch_size 4 --per_device_eval_batch_size 4 --max_eval_sequences 8 --bf16 false
     --torch_compile false --dataloader_num_workers 0 --use_cpu true --eval_strategy no --save_strategy no
     --logging_steps 1 --sample_on_end 0 --seed 0"
fi
L=$RUNS/train_logs; mkdir -p $L  # each run: log, exit status, eval metrics (tarred into $OUT: at most 8 files come back)
train() {  # NAME GPU RESERVE [extra args]: one run (time limit: keep RESERVE s for what follows), log $L/NAME.log
  local name=$1 gpu=$2 reserve=$3; shift 3
  local t=$(date +%s)
  if [ -f $RUNS/$name/eval_metrics.json ]; then  # an earlier call on this warm machine trained it
    say "train $name: kept from an earlier call ($RUNS/$name)"; echo "kept -" > $L/$name.status; cp $RUNS/$name/eval_metrics.json $L/${name}_eval_metrics.json; return
  fi
  say "train $name on GPU $gpu ($STEPS steps): start"
  CUDA_VISIBLE_DEVICES=$gpu run_for $reserve python3 recipes/train_text.py $C --output_dir $RUNS/$name "$@" \
    > $L/$name.log 2>&1
  local rc=$?
  echo "$rc $(( $(date +%s) - t ))" > $L/$name.status
  say "train $name: exit $rc after $(( $(date +%s) - t )) s | $(grep -E 'validation ELBO|rror' $L/$name.log | tail -1)"
  [ -f $RUNS/$name/eval_metrics.json ] && cp $RUNS/$name/eval_metrics.json $L/${name}_eval_metrics.json
}
# SECOND=0: only the MDM and BD3-16 (one run per GPU: longer runs fit the call); SECOND=1 also BD3-64 and BD3-4
SECOND=${SECOND:-1}; R=$(( ${DRY:-0} == 1 || SECOND == 0 ? 10 : 220 ))  # the first run of each GPU leaves R s
( train mdm 0 $R; [ $SECOND = 1 ] && train bd3_64 0 15 --objective bd3 --block_size 64 ) &
( train bd3_16 1 $R --objective bd3 --block_size 16; [ $SECOND = 1 ] && train bd3_4 1 15 --objective bd3 --block_size 4 ) &
wait
say "validation NELBO (nats/token) at equal tokens:"
python3 - $L $RUNS "$C" <<'PY' | tee -a $LOG
import json, os, sys, time, torch, transformers
out, runs, cmd = sys.argv[1:]
args = cmd.split()
opt = lambda k, d: args[args.index(k) + 1] if k in args else d  # noqa: E731
meta = {"steps": int(opt("--max_steps", 0)), "seq_len": int(opt("--seq_len", 0)),
        "batch": int(opt("--per_device_train_batch_size", 32)), "config": opt("--config", ""), "runs": {},
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu", "torch": torch.__version__,
        "transformers": transformers.__version__, "date": time.strftime("%Y-%m-%d"),
        "command": "bash eval/gpu/decode_train.sh (python3 recipes/train_text.py " + " ".join(args) + " --output_dir RUN [--objective bd3 --block_size N])"}
meta["tokens_per_run"] = meta["steps"] * meta["seq_len"] * meta["batch"]
for n in ("mdm", "bd3_4", "bd3_16", "bd3_64"):
    f, st = os.path.join(out, f"{n}_eval_metrics.json"), os.path.join(out, f"{n}.status")
    rc, sec = (open(st).read().split() + ["", ""])[:2] if os.path.isfile(st) else ("", "")
    nll = json.load(open(f))["eval_nll"] if os.path.isfile(f) else None
    meta["runs"][n] = {"exit": rc, "seconds": sec, "eval_nll": nll}
    print(f"  {n}: {'missing' if nll is None else f'{nll:.4f}'} (exit {rc or '-'}, {sec or '-'} s)")
json.dump(meta, open(os.path.join(out, "train_meta.json"), "w"), indent=1)
PY
cp $L/train_meta.json $OUT/ && tar czf $OUT/decode_train.tgz -C $L .
say "done"
