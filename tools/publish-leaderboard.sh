#!/usr/bin/env bash
# Copy the committed part of a finished report from RESULTS_DIR (the workflow's results/) to
# OUT_DIR (the repository's leaderboard/): both leaderboards, the tidy results table (the baseline
# the regression check compares pull requests with) and the figures, with their relative links
# intact. Everything else under results/ (metrics.json, predictions, logs) stays out of git, and so
# does leaderboard.html (over 2 MB: versioned by DVC through leaderboard/leaderboard.html.dvc).
# OUT_DIR is replaced as a whole, so a figure that is no longer produced disappears.
set -euo pipefail
usage="usage: tools/publish-leaderboard.sh RESULTS_DIR OUT_DIR"
src=${1:?$usage}
out=${2:?$usage}
for file in leaderboard.md leaderboard.html results.parquet plots; do
  if [ ! -e "$src/$file" ]; then
    echo "publish-leaderboard: $src/$file is missing: run the workflow (snakemake) first" >&2
    exit 1
  fi
done
mkdir -p "$(dirname "$out")"
staging=$(mktemp -d "$(dirname "$out")/.leaderboard.XXXXXX")
trap 'rm -rf "$staging"' EXIT
cp "$src/leaderboard.md" "$src/leaderboard.html" "$src/results.parquet" "$staging/"
cp -R "$src/plots" "$staging/plots"
# Snakemake's bookkeeping (.snakemake_timestamp of a directory output) is not part of the report
find "$staging/plots" -name '.*' -type f -delete
# DVC pointers of the previous publication (leaderboard.html.dvc: the HTML is versioned by DVC, not
# git) stay; `dvc add leaderboard/leaderboard.html` then records the new page
if [ -d "$out" ]; then
  find "$out" -maxdepth 1 -name '*.dvc' -type f -exec cp {} "$staging/" \;
fi
chmod -R u+rwX,go+rX "$staging"
rm -rf "$out"
mv "$staging" "$out"
trap - EXIT
echo "published $(find "$out" -type f | wc -l) files to $out"
