# Call 3 of the decoding benchmark, right after eval/gpu/decode_bench.sh on the same warm machine: join the SmolLM2
# judge GGUF (part 1 left in /tmp/judge by call 2, part 2 carried now; eval/gpu/split_judge.sh made both), check its
# sha256, and judge the batch-64 samples of each model on the GPU (generative perplexity + unigram entropy,
# eval/decode_bench.py --judge-only). Returns judged_mdm.json, judged_bd3_16.json (copy each to its b64/judged.json).
#   run(command="bash eval/gpu/decode_judge.sh", kind="nvidia-h200-x2", carry=[".judge2"])
#   DRY=1 DRY_JUDGE_DIR=/tmp/dry_bench bash eval/gpu/decode_judge.sh   # CPU dry run (the dir of a DRY decode_bench.sh)
OUT=${OUT:-out_decode_judge}; DEADLINE=${DEADLINE:-500}
source eval/gpu/common.sh
W=${WORK:-runs/decode_bench}; DEV="--judge-device cuda"
if [ "${DRY:-0}" = 1 ]; then W=${DRY_JUDGE_DIR:?DRY=1 needs DRY_JUDGE_DIR}; DEV="--judge-device cpu --threads 1 --judge-max-samples 4 --judge-min-samples 4"; fi
if [ ! -f /tmp/judge/judge.gguf ]; then
  need_files "carry .judge2 (bash eval/gpu/split_judge.sh here)" .judge2/part01 .judge2/sha256
  need_files "call 2 (eval/gpu/decode_bench.sh with carry .judge1) left part 1 there" /tmp/judge/part00
  cat /tmp/judge/part00 .judge2/part01 > /tmp/judge/judge.gguf.tmp && mv /tmp/judge/judge.gguf.tmp /tmp/judge/judge.gguf
fi
[ -f .judge2/sha256 ] && cp .judge2/sha256 /tmp/judge/sha256
(cd /tmp/judge && sha256sum -c sha256) || { say "judge.gguf: checksum mismatch"; rm -f /tmp/judge/judge.gguf; exit 1; }
for name in mdm bd3_16; do
  [ -f $W/$name/b64/results.json ] || { say "no $W/$name/b64: nothing to judge"; continue; }
  t=$(date +%s); say "judge $name: start"
  run_for 10 python3 eval/decode_bench.py --judge-only $W/$name/b64 --judge /tmp/judge/judge.gguf $DEV 2>&1 \
    | grep -v "Loading\|Warning\|warn(" | grep "genppl\|judge:\|^|\|error" | head -40
  say "judge $name: done after $(( $(date +%s) - t )) s"
  [ -f $W/$name/b64/judged.json ] && cp $W/$name/b64/judged.json $OUT/judged_$name.json
done
say "done"
