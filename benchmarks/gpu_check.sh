#!/usr/bin/env bash
# The checks that need a GPU, in one run that stops starting work after a deadline:
#   1. a harness cell's TabGRAA fit of Adult on CUDA (benchmarks/device_fit.py fit),
#   2. the test suite with every synthesizer-level fit on CUDA (TABGRAA_TEST_DEVICE=cuda; the
#      SDGym and multi-process tests are left out: the GPU machine has no SDGym, and
#      test_distributed.py launches CPU processes),
#   3. more harness fits (default, beijing, magic, shoppers) while time is left,
#   4. Adult again with 4,096-row SFT batches (a speed probe; the harness's cells use 512),
# with the GPU's utilisation logged every 2 s meanwhile (OUT/dmon.txt).
# Needs the package's dependencies importable (not SDGym). Writes OUT/log.txt (everything
# printed), and each fit's rows and JSON to OUT; score the rows afterwards, here, with
#   python benchmarks/device_fit.py score OUT/<name>.json
#
#   bash benchmarks/gpu_check.sh OUT DATA_DIR [DEADLINE_SECONDS=400]
set -u
out=$1 data=$2 deadline=${3:-400}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
left() { echo $((deadline - SECONDS)); }

{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  nproc
  python3 -c 'import torch, transformers, peft, sdv, pandas, numpy, sklearn
print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.is_available(),
      "transformers", transformers.__version__, "peft", peft.__version__, "sdv", sdv.__version__,
      "pandas", pandas.__version__, "numpy", numpy.__version__, "sklearn", sklearn.__version__)'
} > "$out/log.txt" 2>&1

fit() {  # dataset, seconds at most, more device_fit.py arguments
    echo "== fit $1 on cuda ${*:3} ($(left) s left, t=$SECONDS)"
    timeout "$2" python3 benchmarks/device_fit.py fit "$1" --seed 0 --device cuda \
        --data-dir "$data" --out "$out" "${@:3}"
    echo "rc=$? t=$SECONDS"
}

nvidia-smi dmon -s u -d 2 > "$out/dmon.txt" 2>&1 &
dmon=$!
{
fit adult 170
echo "== pytest, TABGRAA_TEST_DEVICE=cuda ($(left) s left)"
TABGRAA_TEST_DEVICE=cuda timeout $(( $(left) > 150 ? 150 : $(left) )) \
    python3 -m pytest -q -n 8 -p no:cacheprovider -rfE --tb=short \
    --ignore tests/test_sdgym_benchmark.py --ignore tests/test_tabddpm_steps.py \
    --ignore tests/test_distributed.py
echo "rc=$?"
for dataset in default beijing magic shoppers; do
    if [ "$(left)" -gt 60 ]; then fit "$dataset" "$(left)"; fi
done
if [ "$(left)" -gt 60 ]; then fit adult "$(left)" --batch-size 4096; fi
echo "== done after $SECONDS s"
} >> "$out/log.txt" 2>&1
kill "$dmon" 2>/dev/null
tail -c 11000 "$out/log.txt"
