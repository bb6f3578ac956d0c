#!/usr/bin/env bash
# A real single-node Slurm cluster (Debian's slurmctld, slurmd and munged with a private
# configuration, ports and state, started and stopped here without systemd):
# 1. a 16-point sweep as a job array plus its collect job (afterany): the collect job holds
#    the dependency on the array, builds the table itself, and the table equals the same
#    sweep run locally;
# 2. a task of that array cancelled before it runs (the array submitted held): a resubmission
#    while it is queued is refused, the collect job reports the task's points missing,
#    --resubmit-failed submits that task alone with the stored settings, and the table is
#    whole again;
# 3. a what-if study end to end (runs, collect job, report) with sbatch options.
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
  squeue -h -o %i 2>/dev/null | xargs -r scancel --quiet 2>/dev/null
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
NodeName=$host NodeAddr=127.0.0.1 CPUs=2 RealMemory=4096 State=UNKNOWN
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

wait_idle() {  # every job of this cluster has left the queue
  for _ in $(seq 1 "$1"); do
    [ -z "$(squeue -h 2>/dev/null)" ] && return 0
    sleep 1
  done
  echo "slurm_check: jobs still queued after $1 s"; squeue; exit 1
}

# 1. The worked-example sweep (16 points), under a job name cleanup can cancel.
spec="$d/spec.textproto"
sed -e 's/^name: .*/name: "slurm_ci"/' \
    -e "s|\"\\.\\./|\"$src/configs/|" "$src/configs/sweeps/batch_context_h100.textproto" >"$spec"
# Submitted held (--hold reaches sbatch through --sbatch-extra), so task 2 can be cancelled
# before anything runs.
"$bin" sweep "$spec" --out "$d/cluster" --slurm --points-per-task 3 --array-limit 1 \
  --partition ci --time 10 --mem 1G --cpus 1 --sbatch-extra --hold | tee "$d/submit.txt"
array=$(awk '/^array /{print $2}' "$d/cluster/slurm/jobs.txt")
collect=$(awk '/^collect /{print $2}' "$d/cluster/slurm/jobs.txt")
[ -n "$array" ] && [ -n "$collect" ] || { echo "slurm_check: no job ids recorded"; exit 1; }
# The collect job waits for the whole array.
scontrol show job "$collect" | grep -q "Dependency=afterany:${array}" ||
  { echo "slurm_check: the collect job lacks afterany:$array"; scontrol show job "$collect"; exit 1; }
# Resubmitting while the array is queued would run its points twice: refused.
if "$bin" sweep --resubmit-failed "$d/cluster" 2>"$d/early.txt"; then
  echo "slurm_check: a resubmission while the array is queued was accepted"; exit 1
fi
grep -q "still queued or running" "$d/early.txt"
# 2. Task 2 (points 6-8) is cancelled before it runs; then everything is released.
scancel "${array}_2"
scontrol release "$array"
scontrol release "$collect"
wait_idle 600
ls "$d/cluster/slurm"/collect_*.out >/dev/null
grep -q "16 points: 13 ok, 0 failed, 0 invalid, 3 missing" "$d/cluster/slurm"/collect_*.out ||
  { echo "slurm_check: the collect job did not report task 2's points missing"; cat "$d/cluster/slurm"/collect_*.out; exit 1; }
grep -q "missing points: 6 7 8" "$d/cluster/slurm"/collect_*.out
# The stored settings, except the extras given now (no --hold this time).
"$bin" sweep --resubmit-failed "$d/cluster" --sbatch-extra --comment=resubmitted |
  tee "$d/resubmit.txt"
grep -q "^#SBATCH --array=2%1$" "$d/cluster/sweep.sbatch" ||
  { echo "slurm_check: the resubmission is not task 2 alone"; cat "$d/cluster/sweep.sbatch"; exit 1; }
grep -q "^#SBATCH --time=10$" "$d/cluster/sweep.sbatch"
grep -q "^#SBATCH --comment=resubmitted$" "$d/cluster/sweep.sbatch"
! grep -q -- "--hold" "$d/cluster/sweep.sbatch"
wait_idle 300
[ "$(ls "$d/cluster/slurm" | grep -c '^[0-9]*_[0-9]*\.out$')" -eq 6 ] ||
  { echo "slurm_check: expected 6 array task logs (5 + the resubmitted one)"; ls "$d/cluster/slurm"; exit 1; }
"$bin" sweep collect "$d/cluster" | tee "$d/collect.txt"
grep -q "16 points: 16 ok, 0 failed, 0 invalid, 0 missing" "$d/collect.txt"
"$bin" sweep --resubmit-failed "$d/cluster" | grep -q "nothing to resubmit"

"$bin" sweep "$spec" --out "$d/local" --jobs 2 --quiet
diff "$d/cluster/summary.csv" "$d/local/summary.csv"
echo "slurm_check: the cluster's table equals the local one (16 points; a cancelled task resubmitted alone)"

# 3. A what-if study (the default one, 2 seeds: 8 runs) end to end on the cluster.
study="$d/study.textproto"
sed -e 's/^name: .*/name: "slurm_ci_study"/' -e 's/^seeds: .*/seeds: 2/' \
    -e "s|\"\\.\\./\\.\\./|\"$src/configs/|" -e "s|\"\\.\\./|\"$src/configs/studies/|" \
    "$src/configs/studies/whatif/controller_placement_70b_tp8.textproto" >"$study"
"$bin" study "$study" --out "$d/study" --slurm --partition ci --points-per-task 2 --cpus 2 \
  --sbatch-extra --comment=tiersim-ci
grep -q "^#SBATCH --comment=tiersim-ci$" "$d/study/study.sbatch"
grep -q -- '--jobs "${SLURM_CPUS_PER_TASK:-1}"' "$d/study/study.sbatch"  # 2 runs at once per task
wait_idle 600
grep -q "8 runs: 8 ok" "$d/study/slurm"/collect_*.out ||
  { echo "slurm_check: the study's collect job did not collect 8 runs"; cat "$d/study/slurm"/collect_*.out; exit 1; }
[ -s "$d/study/report/report.md" ] || { echo "slurm_check: no study report"; exit 1; }
echo "slurm_check: a study ran end to end on the cluster (8 runs, report by the collect job)"
