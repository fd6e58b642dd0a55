#!/usr/bin/env bash
# A one-node Slurm cluster from Debian 12's packages (slurmctld, slurmd, slurm-client, munge), for the
# tests of Examples/slurm. No systemd, no cgroups, no accounting: just enough to run job arrays and
# dependent jobs on this machine.
#
#   .ci/slurm-single-node.sh up      install what is missing, configure, start, wait until the node is idle
#   .ci/slurm-single-node.sh down    stop the daemons this script started (by recorded pid)
#
# State, logs and slurm.conf live in $AERIALSEG_SLURM_DIR (default /tmp/aerialseg-slurm); `up` prints
# `SLURM_CONF=...` on its last line. Needs root (slurmd setuid()s to the job's owner), or sudo.
set -euo pipefail
if [ "$(id -u)" != 0 ]; then exec sudo -E env "PATH=$PATH" bash "$0" "$@"; fi
# Close every descriptor inherited above stderr: the daemons started below live on, and an inherited
# pipe of the caller (a test process capturing other commands' output) would never see its end.
for fd in /proc/$$/fd/*; do
    n=${fd##*/}
    if [ "$n" -gt 2 ] 2>/dev/null; then eval "exec $n>&-" 2>/dev/null || true; fi
done
export PATH="/usr/sbin:/sbin:$PATH"
dir="${AERIALSEG_SLURM_DIR:-/tmp/aerialseg-slurm}"
conf="$dir/slurm.conf"
node="$(hostname -s)"
export SLURM_CONF="$conf"
say() { echo "slurm-single-node: $*" >&2; }

alive() { [ -s "$1" ] && [ -d "/proc/$(cat "$1")" ] && ! grep -q '^State:.*Z' "/proc/$(cat "$1")/status" 2>/dev/null; }
stop() {
    if alive "$1"; then
        local pid; pid="$(cat "$1")"
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 100); do alive "$1" || break; sleep 0.1; done
        alive "$1" && kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$1"
}
munge_ok() { command -v munge >/dev/null && munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }

up() {
    mkdir -p "$dir/log"
    if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null \
        || ! command -v sbatch >/dev/null; then
        export DEBIAN_FRONTEND=noninteractive
        # The packages' scripts try to start services; without systemd that is refused, harmlessly.
        apt-get install -y -q --no-install-recommends slurmctld slurmd slurm-client munge >"$dir/log/apt.log" 2>&1 || {
            apt-get update -q >>"$dir/log/apt.log" 2>&1
            apt-get install -y -q --no-install-recommends slurmctld slurmd slurm-client munge >>"$dir/log/apt.log" 2>&1 \
                || { tail -n 20 "$dir/log/apt.log" >&2; say "cannot install Slurm"; exit 1; }
        }
    fi
    if ! munge_ok; then
        install -d -o munge -g munge -m 0700 /etc/munge /var/log/munge /var/lib/munge
        [ -s /etc/munge/munge.key ] || mungekey --create --keyfile=/etc/munge/munge.key
        chown munge:munge /etc/munge/munge.key && chmod 0400 /etc/munge/munge.key
        install -d -o munge -g munge -m 0755 /run/munge
        setsid setpriv --reuid=munge --regid=munge --init-groups /usr/sbin/munged -F </dev/null \
            >"$dir/log/munged.out" 2>&1 &
        echo $! >"$dir/munged.pid"
        for _ in $(seq 1 50); do munge_ok && break; sleep 0.1; done
        munge_ok || { cat "$dir/log/munged.out" >&2; say "munged did not start"; exit 1; }
    fi
    if alive "$dir/slurmctld.pid.ours" && alive "$dir/slurmd.pid.ours"; then
        say "already running"
    else
        stop "$dir/slurmd.pid.ours"; stop "$dir/slurmctld.pid.ours"
        rm -rf "$dir/state" "$dir/spool" && mkdir -p "$dir/state" "$dir/spool"
        local memory
        memory="$(slurmd -C | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p')"
        # Configured memory above the detected one makes the node INVALID; CR_CPU so that jobs
        # without --mem do not each claim the whole node; linuxproc because cgroups are not mounted here.
        cat >"$conf" <<CONF
ClusterName=aerialseg-ci
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0
DependencyParameters=kill_invalid_depend
ReturnToService=2
MinJobAge=600
MailProg=/bin/true
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
NodeName=$node NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=$(( memory * 9 / 10 )) State=UNKNOWN
PartitionName=ci Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
        setsid slurmctld -D -f "$conf" </dev/null >"$dir/log/slurmctld.out" 2>&1 &
        echo $! >"$dir/slurmctld.pid.ours"
        setsid slurmd -D -N "$node" -f "$conf" </dev/null >"$dir/log/slurmd.out" 2>&1 &
        echo $! >"$dir/slurmd.pid.ours"
    fi
    local state=""
    for _ in $(seq 1 240); do
        state="$(sinfo -h -N -n "$node" -o '%T' 2>/dev/null | head -n1 || true)"
        [ "$state" = idle ] && break
        alive "$dir/slurmctld.pid.ours" && alive "$dir/slurmd.pid.ours" || break
        sleep 0.25
    done
    if [ "$state" != idle ]; then
        tail -n 10 "$dir"/log/*.log "$dir"/log/*.out >&2 2>/dev/null || true
        say "the node did not become idle (state '$state')"
        exit 1
    fi
    # The first scheduling pass runs a few seconds after start; jobs submitted before it wait longer.
    for _ in $(seq 1 40); do grep -q 'SchedulerParameters=' "$dir/log/slurmctld.log" 2>/dev/null && break; sleep 0.25; done
    chmod 0755 "$dir" && chmod 0644 "$conf"
    echo "SLURM_CONF=$conf"
}

down() {
    stop "$dir/slurmd.pid.ours"
    stop "$dir/slurmctld.pid.ours"
    stop "$dir/munged.pid"
}

case "${1:-up}" in
    up) up ;;
    down) down ;;
    *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
