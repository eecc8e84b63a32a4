#!/usr/bin/env bash
# Stop only the daemons .ci/slurm-up.sh started, by their recorded PIDs (never by name).
RUN_DIR=${1:-${SLURM_CI_RUN_DIR:-$PWD/.slurm-ci}}
for daemon in slurmd slurmctld munged; do
  file="$RUN_DIR/$daemon.pid"
  [ -f "$file" ] || continue
  pid=$(cat "$file")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$file"
done
# the daemons leave their PidFile behind; a stale one breaks a later `apt-get purge slurmctld`
rm -f /run/slurmctld.pid /run/slurmd.pid
echo "slurm-down: stopped the daemons recorded in $RUN_DIR"
