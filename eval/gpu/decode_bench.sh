# Call 2 of the decoding benchmark (issue 17), right after eval/gpu/decode_train.sh on the same warm machine
# (its models are in runs/decode/s$STEPS/): eval/decode_bench.py on the MDM (GPU 0, block 32) and the BD3 model of block
# size 16 (GPU 1, block 16) in parallel — batch 1 at 256 / 512 / 1024 tokens (median of 3), then batch 64 at
# 512 / 256 tokens (1 timed run: the samples the judge scores) — and eval/bench_sampler.py's overhead (batch 8,
# GPU 1, first). The samples are judged by call 3 (eval/gpu/decode_judge.sh, on the GPU) or later here on the CPU
# (slow: ~100 judge tokens/s): for d in mdm bd3_16; do python eval/decode_bench.py --judge-only DIR/$d/b64; done
# Returns decode_mdm.tgz, decode_bd3_16.tgz (results.json, samples, logs), bench_sampler_b8.json, run.log.
#   run(command="mkdir -p /tmp/big && cp .big1/part* /tmp/big/ && bash eval/gpu/decode_bench.sh", kind="nvidia-h200-x2",
#       carry=[".big1"])
# (no .whl: call 1 installed the wheels in /tmp/site; .big1 = the judge GGUF's first part from
# ../shared/device/split-large.sh, which waits in /tmp/big for the call that carries .big2)
#   DRY=1 bash eval/gpu/decode_bench.sh     # CPU dry run here (after DRY=1 decode_train.sh): tiny sizes, ~2 min
OUT=${OUT:-out_decode_bench}; DEADLINE=${DEADLINE:-570}
source eval/gpu/common.sh
RUNS=${RUNS:-runs/decode/s${STEPS:-600}}; W=${WORK:-runs/decode_bench}  # STEPS as in call 1
MDM_ROWS="uncached graphs threshold dual dual+threshold dual+threshold@0.7 dual+factor dual+eb verify dual+threshold+eos"
BD3_ROWS="uncached block_exact block_exact+threshold block_exact+threshold@0.7 block_exact+factor block_exact+eb"
B1="--batch-size 1 --gen-length 256 512 1024 --repeats 3 --max-seconds-per-row 20"
B64="--batch-size 64 --gen-length 512 256 --repeats 1 --max-seconds-per-row 45"
SAMPLER="--batch 8 --gen-length 256 --steps 128 --block-length 32 --repeats 2 --dtype bfloat16 --device cuda"
DEV="--device cuda --dtype bf16"
if [ "${DRY:-0}" = 1 ]; then  # the models of `DRY=1 DRY_RUNS=DIR bash eval/gpu/decode_train.sh`, tiny sizes, CPU
  RUNS=${DRY_RUNS:?DRY=1 needs DRY_RUNS=the dir of the DRY decode_train.sh models}; W=${DRY_WORK:-$(mktemp -d)}
  MDM_ROWS="uncached graphs threshold dual dual+threshold@0.7"; BD3_ROWS="uncached block_exact block_exact+threshold@0.7"
  B1="--batch-size 1 --gen-length 32 --repeats 1"; B64="--batch-size 4 --gen-length 32 --repeats 1 --judge-min-samples 4"
  SAMPLER="--batch 2 --gen-length 32 --steps 16 --block-length 16 --repeats 1 --device cpu"; DEV="--device cpu --threads 1"
fi
need_files "run eval/gpu/decode_train.sh first (call 1, on the same warm machine)" $RUNS/mdm/config.json
say "models: $RUNS, work dir: $W"
JUDGE_GGUF=${JUDGE_GGUF:-/tmp/SmolLM2-135M-Instruct.Q4_1.gguf}  # joined from .big1 + .big2 (split-large.sh)
JUDGE="--no-judge"
[ -f $JUDGE_GGUF ] && [ "${DRY:-0}" != 1 ] && JUDGE="--judge $JUDGE_GGUF --judge-device cuda"
say "judge in this call: $([ "$JUDGE" != --no-judge ] && echo yes || echo 'no: eval/gpu/decode_judge.sh (call 3), or --judge-only here')"
bench() {  # NAME GPU BLOCK ROWS PART ARGS...: one eval/decode_bench.py run into $W/NAME/PART
  local name=$1 gpu=$2 block=$3 rows=$4 part=$5; shift 5
  local t=$(date +%s); mkdir -p $W/$name
  say "decode_bench $name $part on GPU $gpu: start"
  CUDA_VISIBLE_DEVICES=$gpu run_for 25 python3 eval/decode_bench.py --model $RUNS/$name --out $W/$name/$part --overwrite \
    --block-length $block --rows $rows $DEV $JUDGE "$@" > $W/$name/$part.log 2>&1
  say "decode_bench $name $part: exit $? after $(( $(date +%s) - t )) s"
  grep -v "Loading weights\|Warning\|warn(" $W/$name/$part.log | grep "^|\|^model\|error" | head -60
}
(
  bench mdm 0 32 "$MDM_ROWS" b1 $B1
  bench mdm 0 32 "$MDM_ROWS" b64 $B64
) &
(
  t=$(date +%s); say "bench_sampler (overhead) on the MDM, GPU 1: start"
  CUDA_VISIBLE_DEVICES=1 run_for 30 python3 eval/bench_sampler.py --model $RUNS/mdm $SAMPLER --out $OUT/bench_sampler_b8.json --overwrite \
    2>&1 | grep "^|" | head -12
  say "bench_sampler: done after $(( $(date +%s) - t )) s"
  if [ -f $RUNS/bd3_16/config.json ]; then
    bench bd3_16 1 16 "$BD3_ROWS" b1 $B1
    bench bd3_16 1 16 "$BD3_ROWS" b64 $B64
  else
    say "no $RUNS/bd3_16 (the BD3 objective did not train in call 1): BD3 rows not run"
  fi
) &
wait
for name in mdm bd3_16; do
  [ -d $W/$name ] && tar czf $OUT/decode_$name.tgz -C $W $name && say "$OUT/decode_$name.tgz: $(du -h $OUT/decode_$name.tgz | cut -f1)"
done
say "done"
