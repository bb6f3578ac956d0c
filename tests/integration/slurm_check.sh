#!/usr/bin/env bash
# A real single-node Slurm cluster (Debian's slurmctld, slurmd and munged with a private
# configuration, ports and state, started and stopped here without systemd) runs a 16-point
# sweep as a job array; its table must equal the same sweep run locally.
#
# usage: slurm_check.sh TIERSIM_BINARY SOURCE_DIR
# Needs root (slurmd launches jobs as their user); exits 77 (skipped) otherwise.
set -euo pipefail
bin=$1
src=$2
if [ "$(id -u)" -ne 0 ]; then
  echo "slurm_check: needs root to run slurmd; skipped"
  exit 77
fi
for tool in munged slurmctld slurmd sbatch squeue; do
  command -v "$tool" >/dev/null || { echo "slurm_check: $tool missing (scripts/setup installs slurm-wlm and munge)"; exit 1; }
done

d=$(mktemp -d /tmp/tiersim_slurm.XXXXXX)
host=$(hostname -s)
port=$((20000 + $$ % 20000))
cleanup() {
  set +e
  scancel --quiet --full --jobname=tiersim-slurm_ci 2>/dev/null
  for p in slurmd slurmctld munged; do
    [ -f "$d/$p.pid" ] && kill "$(cat "$d/$p.pid")" 2>/dev/null
  done
  sleep 1
  rm -rf "$d"
}
trap cleanup EXIT
mkdir -p "$d/state" "$d/spool" "$d/log"

dd if=/dev/urandom of="$d/munge.key" bs=1024 count=1 2>/dev/null
chmod 400 "$d/munge.key"
munged --socket="$d/munge.sock" --key-file="$d/munge.key" --pid-file="$d/munged.pid" \
  --log-file="$d/munged.log" --seed-file="$d/munged.seed" --force

cat >"$d/slurm.conf" <<CONF
ClusterName=tiersimci
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmctldPort=$port
SlurmdPort=$((port + 1))
AuthType=auth/munge
AuthInfo=socket=$d/munge.sock
CredType=cred/munge
StateSaveLocation=$d/state
SlurmdSpoolDir=$d/spool
SlurmctldPidFile=$d/slurmctld.pid
SlurmdPidFile=$d/slurmd.pid
SlurmctldLogFile=$d/log/slurmctld.log
SlurmdLogFile=$d/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
ReturnToService=2
NodeName=$host NodeAddr=127.0.0.1 CPUs=2 State=UNKNOWN
PartitionName=ci Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF=$d/slurm.conf
slurmctld -f "$SLURM_CONF"
slurmd -f "$SLURM_CONF"
for _ in $(seq 1 30); do
  sinfo -h -o %t 2>/dev/null | grep -q idle && break
  sleep 1
done
sinfo -h -o %t | grep -q idle || { echo "slurm_check: the node never became idle"; cat "$d"/log/*.log; exit 1; }

# The worked-example sweep (16 points), under a job name cleanup can cancel.
spec="$d/spec.textproto"
sed -e 's/^name: .*/name: "slurm_ci"/' \
    -e "s|\"\\.\\./|\"$src/configs/|" "$src/configs/sweeps/batch_context_h100.textproto" >"$spec"
"$bin" sweep "$spec" --out "$d/cluster" --slurm --points-per-task 3 --array-limit 4 --partition ci
for _ in $(seq 1 300); do
  [ -z "$(squeue -h -n tiersim-slurm_ci 2>/dev/null)" ] && break
  sleep 1
done
[ -z "$(squeue -h -n tiersim-slurm_ci)" ] || { echo "slurm_check: the array did not finish in 300 s"; squeue; exit 1; }
"$bin" sweep collect "$d/cluster" | tee "$d/collect.txt"
grep -q "16 points: 16 ok, 0 failed, 0 invalid, 0 missing" "$d/collect.txt"
[ "$(ls "$d/cluster/slurm" | wc -l)" -eq 6 ] || { echo "slurm_check: expected 6 array task logs"; ls "$d/cluster/slurm"; exit 1; }

"$bin" sweep "$spec" --out "$d/local" --jobs 2 --quiet
diff "$d/cluster/summary.csv" "$d/local/summary.csv"
echo "slurm_check: the cluster's table equals the local one (16 points in 6 array tasks)"
