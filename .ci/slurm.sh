#!/usr/bin/env bash
# A real single-node Slurm on localhost for CI (Debian slurm-wlm + munge), with two fake GPUs.
#   .ci/slurm.sh install   apt-get install slurm-wlm munge (needs root)
#   .ci/slurm.sh start     write the configuration, start munged, slurmctld, slurmd; wait until the node is idle
#   .ci/slurm.sh stop      stop the three daemons by the pids in their pid files
# Settings that make a requeued job run again within seconds: AuthInfo=cred_expire=10 and
# SchedulerParameters=sched_interval=1,bf_interval=1 (see docs/campaigns.md).
set -euo pipefail

install() {
    if command -v sbatch >/dev/null && command -v munged >/dev/null; then return 0; fi
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends slurm-wlm munge
}

wait_for() {  # wait_for SECONDS COMMAND...
    local limit=$1; shift
    local t0=$SECONDS
    until "$@" >/dev/null 2>&1; do
        if (( SECONDS - t0 > limit )); then echo "timed out waiting for: $*" >&2; return 1; fi
        sleep 0.2
    done
}

start() {
    stop   # daemons of an earlier start (pid files) go first: a clean start
    mkdir -p /run/munge /var/lib/slurm/slurmctld /var/lib/slurm/slurmd /var/log/slurm /var/lib/slurm/fakegpu /etc/slurm
    chown munge: /run/munge
    chown -R slurm: /var/lib/slurm/slurmctld /var/log/slurm
    rm -rf /var/lib/slurm/slurmctld/*   # a clean start: old jobs would come back otherwise
    [[ -f /etc/munge/munge.key ]] || { dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null;
                                       chown munge: /etc/munge/munge.key; chmod 400 /etc/munge/munge.key; }
    for i in 0 1; do [[ -c /var/lib/slurm/fakegpu/gpu$i ]] || mknod /var/lib/slurm/fakegpu/gpu$i c 1 3; done
    local cpus mem
    cpus=$(nproc)
    mem=$(( $(awk '/MemTotal/ {print int($2/1024)}' /proc/meminfo) - 1024 ))
    echo "NodeName=localhost Name=gpu File=/var/lib/slurm/fakegpu/gpu[0-1]" > /etc/slurm/gres.conf
    cat > /etc/slurm/slurm.conf <<CONF
ClusterName=ci
SlurmctldHost=localhost
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=/var/log/slurm/jobcomp.log
StateSaveLocation=/var/lib/slurm/slurmctld
SlurmdSpoolDir=/var/lib/slurm/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
AuthInfo=cred_expire=10
SchedulerParameters=sched_interval=1,bf_interval=1
KillWait=5
GresTypes=gpu
NodeName=localhost NodeAddr=127.0.0.1 CPUs=${cpus} RealMemory=${mem} Gres=gpu:2 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
    runuser -u munge -- /usr/sbin/munged
    wait_for 20 munge -n
    /usr/sbin/slurmctld
    wait_for 30 scontrol ping
    /usr/sbin/slurmd -N localhost
    local t0=$SECONDS state
    while true; do
        state=$(sinfo -h -N -o %t 2>/dev/null | head -1 || true)
        case "$state" in
            idle*|mix*|alloc*) break ;;
            drain*|inval*|down*) scontrol update nodename=localhost state=resume >/dev/null 2>&1 || true ;;
        esac
        if (( SECONDS - t0 > 60 )); then echo "slurm node did not become idle (state '$state')" >&2; return 1; fi
        sleep 0.5
    done
    echo "slurm up: node localhost $(sinfo -h -N -o '%t %c CPUs %G')"
}

stop_pid() {  # stop_pid PIDFILE
    local file=$1 pid
    [[ -f $file ]] || return 0
    pid=$(cat "$file")
    if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid"
        local t0=$SECONDS
        while kill -0 "$pid" 2>/dev/null; do
            if (( SECONDS - t0 > 20 )); then kill -KILL "$pid" 2>/dev/null || true; break; fi
            sleep 0.1
        done
    fi
    rm -f "$file"
}

stop() {
    stop_pid /run/slurmd.pid
    stop_pid /run/slurmctld.pid
    stop_pid /run/munge/munged.pid
}

case "${1:-}" in
    install) install ;;
    start) start ;;
    stop) stop ;;
    *) echo "usage: $0 install|start|stop" >&2; exit 2 ;;
esac
