#!/usr/bin/env bash
# End-to-end check of testenv/slurm (needs root; takes ~1 minute).
#   testenv/slurm.d/selftest.sh [--state-dir DIR]
# Brings a 4-node cluster up (fresh), exercises drain/resume, srun, sbatch
# with GPUs, a QOS GrpTRES=gres/gpu:h100=16 limit (QOSGrpGRES), --json
# output, the --extra-conf health check hook, then `down` and checks that
# no daemon is left.  Exit 0 when everything passed.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
ts=("$here/slurm" "$@")
fail() { echo "SELFTEST FAIL: $*" >&2; exit 1; }
ok() { echo "ok - $*"; }

wait_state() {  # jobid state timeout
  local i
  for ((i = 0; i < $3 * 10; i++)); do
    [[ "$(squeue -h -j "$1" -o %T 2>/dev/null)" == "$2" ]] && return 0
    sleep 0.1
  done
  return 1
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"${ts[@]}" up --fresh --nodes 4
eval "$("${ts[@]}" env)"
state=$COMPUTECTL_TESTENV_SLURM_STATE_DIR
"${ts[@]}" status >/dev/null || fail "status != 0 after up"
[[ $(sinfo -h -N -o %T | sort -u) == idle ]] || fail "nodes not idle"
[[ $(sinfo -h -o '%P %D' | tr '\n' ' ') == "training* 3 inference 1 " ]] ||
  fail "partitions: $(sinfo -h -o '%P %D')"
ok "4 nodes idle, training*=3 inference=1"

# second up is a no-op
pid_before=$(cat "$state/pids/slurmctld.pid")
"${ts[@]}" up --nodes 4 2>/dev/null
[[ $(cat "$state/pids/slurmctld.pid") == "$pid_before" ]] || fail "up restarted"
ok "up is idempotent"

scontrol update nodename=gpu-002 state=drain reason="test"
sinfo -R -h -o '%N %E' | grep -q '^gpu-002 test$' || fail "drain not in sinfo -R"
scontrol update nodename=gpu-002 state=resume
for i in $(seq 50); do
  [[ $(sinfo -h -n gpu-002 -o %T) == idle ]] && break; sleep 0.1
done
[[ $(sinfo -h -n gpu-002 -o %T) == idle ]] || fail "resume"
ok "drain / sinfo -R / resume"

[[ $(timeout 30 srun -N1 hostname) == "$(hostname)" ]] || fail "srun hostname"
out=$(timeout 30 srun -N1 -p inference --gres=gpu:h100:8 \
  bash -c 'echo $SLURMD_NODENAME $CUDA_VISIBLE_DEVICES')
[[ $out == "gpu-004 0,1,2,3,4,5,6,7" ]] || fail "srun gres: $out"
ok "srun (incl. --gres=gpu:h100:8 -> CUDA_VISIBLE_DEVICES)"

cd "$tmp"
j=$(sbatch --parsable --wrap 'sleep 30' --gres=gpu:h100:8 -p training)
wait_state "$j" RUNNING 15 || fail "sbatch job $j did not start"
ok "sbatch --gres=gpu:h100:8 -p training runs ($j)"
scancel "$j"

sacctmgr -i add qos gpu16 set GrpTRES=gres/gpu:h100=16 >/dev/null
sacctmgr -i add account teama cluster=computectl >/dev/null
sacctmgr -i add user root account=teama qos=gpu16 >/dev/null
j16=$(sbatch --parsable -A teama -q gpu16 -N2 --gres=gpu:h100:8 --wrap 'sleep 60')
j24=$(sbatch --parsable -A teama -q gpu16 -N3 --gres=gpu:h100:8 --wrap 'sleep 60')
wait_state "$j16" RUNNING 15 || fail "16-GPU job not running"
for i in $(seq 50); do
  [[ $(squeue -h -j "$j24" -o %r) == QOSGrpGRES ]] && break; sleep 0.1
done
[[ $(squeue -h -j "$j24" -o '%T %r') == "PENDING QOSGrpGRES" ]] ||
  fail "24-GPU job: $(squeue -h -j "$j24" -o '%T %r')"
ok "QOS GrpTRES=gres/gpu:h100=16: 16-GPU job runs, 24-GPU job PENDING QOSGrpGRES"
squeue --json | python3 -c '
import json, sys
d = json.load(sys.stdin)
r = {j["job_id"]: j["state_reason"] for j in d["jobs"]}
assert r['"$j24"'] == "QOSGrpGRES", r'
sinfo --json | python3 -c 'import json,sys; assert len(json.load(sys.stdin)["nodes"]) == 4'
ok "squeue --json / sinfo --json"

# health check hook through --extra-conf: drains gpu-003
# (slurmd runs it with an empty environment: only SLURMD_NODENAME is set)
cat >"$tmp/hc.sh" <<EOF
#!/bin/sh
export SLURM_CONF=$SLURM_CONF PATH=/usr/bin:/bin
[ "\$SLURMD_NODENAME" = gpu-003 ] && scontrol update nodename=gpu-003 state=drain reason=hc-failed
exit 0
EOF
chmod +x "$tmp/hc.sh"
printf 'HealthCheckProgram=%s\nHealthCheckInterval=2\nHealthCheckNodeState=ANY\n' \
  "$tmp/hc.sh" >"$tmp/extra.conf"
"${ts[@]}" up --nodes 4 --extra-conf "$tmp/extra.conf" 2>/dev/null
[[ $(squeue -h -j "$j16" -o %T) == RUNNING ]] || fail "job lost on reconfig"
ok "config change via up restarts slurm daemons, running job survives"
for i in $(seq 100); do
  sinfo -R -h -o '%N %E' | grep -q '^gpu-003 hc-failed$' && break; sleep 0.1
done
sinfo -R -h -o '%N %E' | grep -q '^gpu-003 hc-failed$' || fail "health check"
ok "--extra-conf HealthCheckProgram drains a node"

j=$(sbatch --parsable --wrap 'sleep 300' -p inference)
wait_state "$j" RUNNING 15 || fail "job before down"
"${ts[@]}" down
"${ts[@]}" status >/dev/null && fail "status == 0 after down"
left=$(ps -eo stat=,args= | awk '$1 !~ /Z/' |
  grep -F -- "$state" | grep -v grep || true)
left+=$(ps -eo stat=,comm= | awk '$1 !~ /Z/ && $2 ~ /slurmstepd/' || true)
[[ -z $left ]] || fail "processes left after down: $left"
ok "down leaves no daemons (status exit 3)"
echo "SELFTEST PASSED"
