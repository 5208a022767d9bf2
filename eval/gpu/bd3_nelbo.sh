# Block diffusion (BD3-LM) vs the bidirectional MDM at equal tokens (issue #17 item 1): the 125M config
# (recipes/configs/gpt2_125m.yaml) trained STEPS steps per job on the same data and seed, then a table of the
# validation NELBO (nats/token over the same 256 held-out sequences) with the ratio to the MDM's.
#
#   bash eval/gpu/bd3_nelbo.sh [JOB ...]        JOB = mdm | bd3:<block size>; default: mdm bd3:4 bd3:16 bd3:64
#   env: OUT (required), STEPS (default 200), DEADLINE (seconds for the whole call, default 570),
#        MDM_NLL: the MDM's eval_nll from an earlier call (ratios when mdm is not among this call's jobs),
#        DRY=1: CPU dry run (tiny model, 3 steps, seconds) to check the script end to end.
# Jobs run in parallel, one per GPU (waves of N on N GPUs). Carried: .whl, .data/shakespeare_bible (GPU only).
# Writes $OUT/bd3_nelbo.json (command, GPU, versions, date, one row per job) and $OUT/<job>.log.
set -u
: "${OUT:?set OUT}"
STEPS=${STEPS:-200}
DEADLINE=${DEADLINE:-570}
JOBS=("$@")
[ ${#JOBS[@]} -eq 0 ] && JOBS=(mdm bd3:4 bd3:16 bd3:64)
source eval/gpu/common.sh
if [ "${DRY:-0}" = 1 ]; then
  NGPU=1 STEPS=3
  BASE=(--config recipes/configs/shakespeare_tiny.yaml --max_train_documents 30 --bpe_vocab_size 256 --seq_len 64
        --hidden_size 32 --num_hidden_layers 1 --num_attention_heads 2 --max_eval_sequences 8 --max_steps "$STEPS"
        --eval_strategy no --save_steps "$STEPS" --logging_steps 1 --disable_tqdm true)
else
  NGPU=$(nvidia-smi -L | wc -l)
  BASE=(--config recipes/configs/gpt2_125m.yaml --dataset .data/shakespeare_bible --max_steps "$STEPS"
        --eval_strategy no --save_steps "$STEPS" --logging_steps 10 --disable_tqdm true)
fi
say "jobs: ${JOBS[*]} | $NGPU GPU(s) | steps ${STEPS}"
run_job() {  # run_job GPU JOB
  local gpu=$1 job=$2 name=${2/:/} extra=()
  case $job in
    mdm) ;;
    bd3:*) extra=(--objective bd3 --block_size "${job#bd3:}") ;;
    *) echo "error: unknown job $job (mdm or bd3:<block size>)" | tee -a "$LOG"; return 2 ;;
  esac
  rm -rf "runs/bd3cmp_$name"
  local t=$(date +%s)
  CUDA_VISIBLE_DEVICES=$gpu run_for 15 python3 recipes/train_text.py "${BASE[@]}" "${extra[@]}" --sample_on_end 0 \
    --output_dir "runs/bd3cmp_$name" > "$OUT/$name.log" 2>&1
  local rc=$?
  echo "{\"job\": \"$job\", \"rc\": $rc, \"wall_s\": $(( $(date +%s) - t ))}" > "$OUT/$name.status.json"
  [ -f "runs/bd3cmp_$name/eval_metrics.json" ] && cp "runs/bd3cmp_$name/eval_metrics.json" "$OUT/$name.eval.json"
  say "$job: rc $rc, $(( $(date +%s) - t )) s"
}
i=0
for job in "${JOBS[@]}"; do
  run_job $(( i % NGPU )) "$job" &
  i=$(( i + 1 ))
  if [ $(( i % NGPU )) -eq 0 ]; then wait; fi
done
wait
CMD="bash eval/gpu/bd3_nelbo.sh ${JOBS[*]} (STEPS=$STEPS${DRY:+, DRY=$DRY})"
python3 - "$OUT" "$CMD" "${JOBS[@]}" <<'EOF' | tee -a "$LOG"
import datetime, json, os, re, statistics, subprocess, sys
import torch, transformers
out, cmd, jobs = sys.argv[1], sys.argv[2], sys.argv[3:]
gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu (dry run)"
rows, base = [], float(os.environ["MDM_NLL"]) if os.environ.get("MDM_NLL") else None
for job in jobs:
    name = job.replace(":", "")
    status = json.load(open(f"{out}/{name}.status.json")) if os.path.exists(f"{out}/{name}.status.json") else {}
    ev = json.load(open(f"{out}/{name}.eval.json")) if os.path.exists(f"{out}/{name}.eval.json") else {}
    log = open(f"{out}/{name}.log", errors="replace").read() if os.path.exists(f"{out}/{name}.log") else ""
    tps = [float(x.replace(",", "")) for x in re.findall(r"step \d+: ([\d,]+) tokens/s", log)]
    row = {"job": job, "block_size": None if job == "mdm" else int(job.split(":")[1]), "rc": status.get("rc"),
           "wall_s": status.get("wall_s"), "eval_nll": ev.get("eval_nll"), "eval_tokens": ev.get("eval_tokens"),
           "train_tokens_per_s": statistics.median(tps[len(tps) // 2:]) if tps else None}
    if job == "mdm" and row["eval_nll"] is not None:
        base = row["eval_nll"]
    rows.append(row)
for r in rows:
    r["nelbo_ratio_to_mdm"] = r["eval_nll"] / base if base and r["eval_nll"] else None
print(f"| job | block | val NELBO (nats/tok) | ratio to MDM | eval tokens | train tok/s | wall s | rc |")
print("|---|---|---|---|---|---|---|---|")
f = lambda v, p=4: "—" if v is None else (f"{v:.{p}f}" if isinstance(v, float) else str(v))  # noqa: E731
for r in rows:
    print(f"| {r['job']} | {f(r['block_size'])} | {f(r['eval_nll'])} | {f(r['nelbo_ratio_to_mdm'], 3)} | "
          f"{f(r['eval_tokens'], 0)} | {f(r['train_tokens_per_s'], 0)} | {f(r['wall_s'])} | {f(r['rc'])} |")
json.dump({"command": cmd, "gpu": gpu, "mdm_eval_nll": base, "torch": torch.__version__, "transformers": transformers.__version__,
           "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"), "rows": rows},
          open(f"{out}/bd3_nelbo.json", "w"), indent=1)
EOF
