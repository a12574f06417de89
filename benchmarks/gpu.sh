#!/usr/bin/env bash
# The prepared GPU check (issue 24): at most 8 minutes on one GPU, in this order:
#   1. explainers (Grad-CAM / IG / Occlusion vs tf-explain, xplique where installed, and their
#      compute limits) on ResNet-20 at 32x32x3 and MobileNetV3Small at 96x96x3;
#   2. each method layer's train step (XLA, as fit uses it on a GPU) against its ideal, on the
#      same two models, with the EDDA / plain step ratio;
#   3. a short full-data CIFAR-10 comparison, none vs EDDA, ResNet-20 with the cifar recipe,
#      as many seeds as the time left allows (benchmarks/cifar_compare.py).
# Every section's output goes to $OUT (default runs/gpu) and to the screen.
#
#   benchmarks/gpu.sh            # the GPU check
#   benchmarks/gpu.sh --smoke    # the same steps with tiny settings (CPU, a few minutes): checks the script
#
# CIFAR-10 comes from $KERAS_EDDA_DATA, else ../shared/datasets or shared/datasets when present;
# without it step 3 is skipped with a message.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-$(command -v python3 || command -v python)}
[ -x .venv/bin/python ] && [ -z "${PYTHON:-}" ] && PY=.venv/bin/python
OUT=${OUT:-runs/gpu}
mkdir -p "$OUT"
export TF_CPP_MIN_LOG_LEVEL=2 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
if [ -z "${KERAS_EDDA_DATA:-}" ]; then
    for folder in ../shared/datasets shared/datasets; do
        if [ -f "$folder/cifar10-jpg.tar.gz" ]; then export KERAS_EDDA_DATA="$(cd "$folder" && pwd)"; break; fi
    done
fi
START=$(date +%s)
LIMIT=${GPU_CHECK_SECONDS:-470}

if [ "${1:-}" = "--smoke" ]; then
    SIZE_APP=32
    EXPLAIN="--batch 4 --steps 2 --patch 16 --repeats 1 --chunk 64 --only-core"
    METHODS="--batch 4 --rounds 1 --repeats 1"
    COMPARE="--max-train 64 --epochs 1 --test-samples 64 --max-seeds 1"
    LIMIT=${GPU_CHECK_SECONDS:-1200}
else
    SIZE_APP=96
    EXPLAIN="--batch 64 --steps 32 --repeats 3 --chunk 512 --only-core"
    METHODS="--batch 128 --rounds 3 --repeats 5 --jit"
    COMPARE="--max-seeds 5"
fi

run() {  # run NAME COMMAND...: the output to the screen and to $OUT/NAME.txt
    local name=$1; shift
    echo "== $name ($(( $(date +%s) - START )) s)"
    # A step that fails is reported and the next one runs (the session's time is not spent twice).
    "$@" 2>&1 | grep -v -e "^WARNING" -e "cpu_feature_guard" -e "absl::InitializeLog" | tee "$OUT/$name.txt" \
        || echo "== $name FAILED (see $OUT/$name.txt)"
}

"$PY" -c "import tensorflow as tf; print('devices:', [d.name for d in tf.config.list_physical_devices()])"
run explainers_resnet20 "$PY" benchmarks/explainers.py --model resnet20 --size 32 --patch 4 $EXPLAIN
run explainers_mobilenet "$PY" benchmarks/explainers.py --model mobilenet_v3_small --size $SIZE_APP --patch 16 $EXPLAIN
run methods_resnet20 "$PY" benchmarks/methods.py --model resnet20 --size 32 $METHODS
run methods_mobilenet "$PY" benchmarks/methods.py --model mobilenet_v3_small --size $SIZE_APP $METHODS
LEFT=$(( LIMIT - ($(date +%s) - START) - 60 ))
if [ -z "${KERAS_EDDA_DATA:-}" ]; then
    echo "== compare skipped: no CIFAR-10 (set KERAS_EDDA_DATA to the folder of cifar10-jpg.tar.gz)"
elif [ "$LEFT" -lt 60 ]; then
    echo "== compare skipped: ${LEFT} s left of ${LIMIT} s"
else
    run compare "$PY" benchmarks/cifar_compare.py --budget "$LEFT" $COMPARE
fi
echo "== done in $(( $(date +%s) - START )) s; outputs in $OUT"
