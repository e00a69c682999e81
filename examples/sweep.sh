#!/usr/bin/env bash
# A learning-rate x activation sweep from the shell: every trial is its own `nnctl train`
# process, run 2 at a time by xargs -P, all into one runs folder; then one comparison table.
#
#   bash examples/sweep.sh [CONFIG] [RUNS_DIR]
#
# Run directories never collide (each is created with an exclusive mkdir), so any number of
# processes may train into the same folder. One BLAS thread per process keeps 2 processes on 2
# cores from fighting over them.
set -euo pipefail
config=${1:-configs/moons.yaml}
runs=${2:-runs/shell-sweep}
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1

for lr in 0.001 0.01 0.1; do
  for act in relu tanh sigmoid; do
    echo "$lr $act"
  done
done | xargs -P 2 -L 1 bash -c \
  'nnctl train "$0" --runs-dir "$1" --quiet --name "$3-lr$2" --set optimizer.lr="$2" --set model.activation="$3"' \
  "$config" "$runs"

nnctl compare "$runs" --sort=-best_val_accuracy
