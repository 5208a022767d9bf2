# Call 3 of the decoding benchmark, on the same warm machine after eval/gpu/decode_bench.sh: judge the batch-64
# samples of each model on the GPU (generative perplexity + unigram entropy, eval/decode_bench.py --judge-only) with
# the SmolLM2 GGUF joined from the two parts of ../shared/device/split-large.sh (.big1 carried by call 2 into
# /tmp/big, .big2 by this call; the joining command below checks its sha256). Returns judged_mdm.json,
# judged_bd3_16.json (copy each to its b64/judged.json).
#   run(command="cp .big2/part* /tmp/big/ && cat /tmp/big/part* > /tmp/SmolLM2-135M-Instruct.Q4_1.gguf && sha256sum -c .big2/sha256 && bash eval/gpu/decode_judge.sh",
#       kind="nvidia-h200-x2", carry=[".big2"])
#   DRY=1 DRY_JUDGE_DIR=/tmp/dry_bench JUDGE_GGUF=PATH bash eval/gpu/decode_judge.sh   # CPU dry run
OUT=${OUT:-out_decode_judge}; DEADLINE=${DEADLINE:-500}
source eval/gpu/common.sh
W=${WORK:-runs/decode_bench}; DEV="--judge-device cuda"
if [ "${DRY:-0}" = 1 ]; then W=${DRY_JUDGE_DIR:?DRY=1 needs DRY_JUDGE_DIR}; DEV="--judge-device cpu --threads 1 --judge-max-samples 4 --judge-min-samples 4"; fi
JUDGE_GGUF=${JUDGE_GGUF:-/tmp/SmolLM2-135M-Instruct.Q4_1.gguf}
need_files "join the GGUF first (see the header)" $JUDGE_GGUF
for name in mdm bd3_16; do
  [ -f $W/$name/b64/results.json ] || { say "no $W/$name/b64: nothing to judge"; continue; }
  t=$(date +%s); say "judge $name: start"
  run_for 10 python3 eval/decode_bench.py --judge-only $W/$name/b64 --judge $JUDGE_GGUF $DEV 2>&1 \
    | grep -v "Loading\|Warning\|warn(" | grep "genppl\|judge:\|^|\|error" | head -40
  say "judge $name: done after $(( $(date +%s) - t )) s"
  [ -f $W/$name/b64/judged.json ] && cp $W/$name/b64/judged.json $OUT/judged_$name.json
done
say "done"
