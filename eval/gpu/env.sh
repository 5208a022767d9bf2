# Sourced (from the repository root) by every eval/gpu/*.sh: installs the carried wheels (.whl/, made by
# ../shared/device/fetch-wheels.sh: datasets, deepspeed, gguf, ...) into /tmp/site and sets the offline,
# NCCL (NVLink multicast off) and data-path environment. Without .whl it reuses /tmp/site from an earlier
# call on the same warm machine; DRY=1 (CPU dry runs here) installs nothing. Returns non-zero when the install fails.
if [ "${DRY:-0}" = 1 ]; then  # a CPU dry run on the development machine: its own packages, no wheels
  export PYTHONPATH=$PWD
elif ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || return 1
  export PYTHONPATH=/tmp/site:$PWD PATH=/tmp/site/bin:$PATH
elif [ -d /tmp/site/datasets ]; then  # installed by an earlier call on this (warm) machine
  export PYTHONPATH=/tmp/site:$PWD PATH=/tmp/site/bin:$PATH
else
  echo "no .whl/*.whl carried: datasets / deepspeed must already be installed" >&2
  export PYTHONPATH=$PWD
fi
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
export MDLM_CACHE=${MDLM_CACHE:-/tmp/mdlm_cache}
if [ -d .artifacts/fmnist_idx ]; then export MDLM_FASHION_MNIST_DIR=$PWD/.artifacts/fmnist_idx; fi
