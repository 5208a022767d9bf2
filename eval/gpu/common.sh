# Sourced (from the repository root) by the eval/gpu/*_ablate.sh scripts after they set OUT and DEADLINE: the
# run log, time keeping and the environment report they share; then eval/gpu/env.sh (wheels, offline env).
#   say MSG               "=== [t s] MSG" to stdout and $OUT/run.log
#   left                  seconds until DEADLINE (counted from T0, the script's start)
#   run_for RESERVE CMD   CMD under a time limit that keeps RESERVE s for what follows; with fewer than 20 s
#                         left it prints "skipped" and returns 124 (never `timeout 0`, which means no limit)
#   need_files HINT F...  exit 1 with "missing F: HINT" unless every F exists
#   ensure_mdm RESERVE    the 125M MDM of $C in $RUNS/mdm (trained unless there), log in $W (decode_verify / _distill)
T0=${T0:-$(date +%s)}
mkdir -p "$OUT"
LOG="$OUT/run.log"
say() { echo "=== [$(( $(date +%s) - T0 )) s] $*" | tee -a "$LOG"; }
left() { echo $(( DEADLINE - ($(date +%s) - T0) )); }
run_for() {
  local t=$(( $(left) - $1 )); shift
  if [ "$t" -lt 20 ]; then echo "skipped: fewer than 20 s left"; return 124; fi
  timeout "$t" "$@"
}
ensure_mdm() {  # RESERVE: train the MDM ($C) into $RUNS/mdm unless an earlier call left it there; log $W/train_mdm.log
  if [ -f $RUNS/mdm/config.json ]; then say "MDM kept from an earlier call ($RUNS/mdm)"; else
    say "train the MDM ($STEPS steps): start"
    run_for "$1" python3 recipes/train_text.py $C --output_dir $RUNS/mdm > $W/train_mdm.log 2>&1
    say "train: exit $? | $(grep -E 'validation ELBO|rror' $W/train_mdm.log | tail -1)"
  fi
  need_files "the MDM did not train (see $W/train_mdm.log)" $RUNS/mdm/config.json
}
need_files() {
  local hint=$1 p; shift
  for p in "$@"; do [ -f "$p" ] || { echo "missing $p: $hint" | tee -a "$LOG"; exit 1; }; done
}
source eval/gpu/env.sh || { echo "wheel install failed" | tee -a "$LOG"; exit 1; }
{
  if command -v nvidia-smi >/dev/null; then nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  else echo "no GPU (nvidia-smi not found): a CPU run"; fi
  python3 -c "import datasets, transformers, torch; print('datasets', datasets.__version__, 'transformers', transformers.__version__, 'torch', torch.__version__)"
  python3 -c "import matplotlib; print('matplotlib', matplotlib.__version__)" || echo "no matplotlib: tables only (use --replot later)"
} 2>&1 | tee -a "$LOG"
