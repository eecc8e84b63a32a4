#!/usr/bin/env bash
# Start a throw-away single-node SLURM cluster (Debian 12's slurm-wlm 22.05 + munge) for CI:
# slurmctld + slurmd + munged, no cgroups, no accounting database, two fake GPUs (so rules that ask
# for --gpus=1 or 2 schedule on a CPU-only machine and fall back to CPU). Daemons run in the foreground
# of background subshells (no systemd on CI); their PIDs go to RUN_DIR for .ci/slurm-down.sh.
# Usage (as root): bash .ci/slurm-up.sh [RUN_DIR]   — see ../shared/research/infra.md
set -euo pipefail
RUN_DIR=${1:-${SLURM_CI_RUN_DIR:-$PWD/.slurm-ci}}
MARKER="# written by replibench .ci/slurm-up.sh"
mkdir -p "$RUN_DIR"
t0=$(date +%s)

if [ "$(id -u)" != 0 ]; then
  echo "slurm-up: must run as root (installs packages, writes /etc/slurm)" >&2; exit 1
fi
if [ -f "$RUN_DIR/slurmctld.pid" ] && kill -0 "$(cat "$RUN_DIR/slurmctld.pid")" 2>/dev/null; then
  echo "slurm-up: already running (PIDs in $RUN_DIR)"; exit 0
fi
if [ -f /etc/slurm/slurm.conf ] && ! grep -qF "$MARKER" /etc/slurm/slurm.conf; then
  echo "slurm-up: /etc/slurm/slurm.conf exists and was not written by this script; refusing to replace it" >&2
  exit 1
fi

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null; then
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      slurmctld slurmd slurm-client munge
fi
t1=$(date +%s)

HOST=$(hostname -s)
# slurmd -C prints this machine's topology; keep ~5% memory headroom. NodeAddr/SlurmctldHost use
# 127.0.0.1 so nothing depends on the hostname resolving.
NODE_LINE=$(slurmd -C | head -1)
MEM=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$NODE_LINE")
NODE_LINE=$(sed "s/RealMemory=[0-9]*/RealMemory=$((MEM * 95 / 100))/" <<<"$NODE_LINE")

mkdir -p /etc/slurm
cat > /etc/slurm/slurm.conf <<CONF
$MARKER
ClusterName=ci
SlurmctldHost=$HOST(127.0.0.1)
AuthType=auth/munge
SlurmUser=slurm
SlurmdUser=root
StateSaveLocation=/var/lib/slurm/slurmctld
SlurmdSpoolDir=/var/lib/slurm/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
MailProg=/bin/true
ReturnToService=2
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=/var/log/slurm/jobcomp.log
# finished jobs stay visible to squeue this long: the Snakemake plugin's squeue status mode needs it
MinJobAge=300
KillWait=30
GresTypes=gpu
$NODE_LINE NodeAddr=127.0.0.1 Gres=gpu:2 State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP DefMemPerCPU=1000
CONF
# two fake GPUs: jobs asking for --gpus=1|2 schedule; CUDA_VISIBLE_DEVICES is set but torch sees no CUDA
printf '%s\nAutoDetect=off\nNodeName=%s Name=gpu File=/dev/null,/dev/zero\n' "$MARKER" "$HOST" > /etc/slurm/gres.conf

install -d -o munge -g munge -m 0755 /run/munge
install -d -o slurm -g slurm /var/lib/slurm/slurmctld /var/log/slurm
install -d /var/lib/slurm/slurmd
# setpriv execs munged directly, so $! is munged's own PID
setpriv --reuid=munge --regid=munge --init-groups /usr/sbin/munged -F >"$RUN_DIR/munged.out" 2>&1 &
echo $! > "$RUN_DIR/munged.pid"
for _ in $(seq 50); do munge -n </dev/null >/dev/null 2>&1 && break; sleep 0.1; done

/usr/sbin/slurmctld -D -c -i >"$RUN_DIR/slurmctld.out" 2>&1 &   # -c: forget jobs of earlier runs
echo $! > "$RUN_DIR/slurmctld.pid"
/usr/sbin/slurmd -D >"$RUN_DIR/slurmd.out" 2>&1 &
echo $! > "$RUN_DIR/slurmd.pid"
for _ in $(seq 300); do
  [ "$(sinfo -h -o %T 2>/dev/null)" = idle ] && break; sleep 0.2
done
if [ "$(sinfo -h -o %T 2>/dev/null)" != idle ]; then
  sinfo || true; tail -20 /var/log/slurm/slurmctld.log /var/log/slurm/slurmd.log || true; exit 1
fi
echo "slurm-up: install $((t1 - t0))s, start $(( $(date +%s) - t1 ))s; PIDs in $RUN_DIR"
