#!/usr/bin/env bash
# Prepare what benchmarks/gpu_reproduce.py needs on a bare GPU machine, and say how to carry it.
#
#   benchmarks/gpu_data.sh [CSV_DIR]      # CSV_DIR holds ETTh1.csv … ETTm2.csv (default ../shared/data/ett)
#
# Builds data/parquet/ett/{etth1,etth2,ettm1,ettm2} (series.parquet + card.json, 2.4 MB in all) with
# the project's own preprocess step, unless they exist (`snakemake data/parquet/ett/etth1 …` writes
# the same folders). Then carry src/, benchmarks/, requirements.lock and data/parquet/ett to the GPU
# machine (a lent device: `carry: ["data/parquet/ett"]`, the rest is tracked; elsewhere rsync it),
# and run there, with only PyTorch, pandas and pyarrow installed:
#
#   PYTHONPATH=src python benchmarks/gpu_reproduce.py --data data/parquet/ett --out gpu-out
#
# Bring back gpu-out/results/ett (metrics.json + predictions.parquet per run) and gpu-out/gpu_reproduce.json.
set -euo pipefail
cd "$(dirname "$0")/.."
csv_dir="${1:-../shared/data/ett}"
replibench="${REPLIBENCH:-.venv/bin/replibench}"
for name in ETTh1 ETTh2 ETTm1 ETTm2; do
  dataset="$(echo "$name" | tr 'A-Z' 'a-z')"
  out="data/parquet/ett/$dataset"
  if [ -f "$out/series.parquet" ] && [ -f "$out/card.json" ]; then
    echo "$out: present"
  else
    "$replibench" preprocess --dataset "$dataset" --raw "$csv_dir/$name.csv" --out "$out"
  fi
done
du -sh data/parquet/ett
echo "carry: data/parquet/ett (with src/, benchmarks/, requirements.lock); run on the GPU machine:"
echo "  PYTHONPATH=src python benchmarks/gpu_reproduce.py --data data/parquet/ett --out gpu-out"
