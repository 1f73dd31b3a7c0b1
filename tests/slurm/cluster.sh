#!/usr/bin/env bash
# A single-node Slurm cluster for the tests, as plain background processes (no systemd), as root.
#
#   tests/slurm/cluster.sh install       # Debian/Ubuntu: apt-get the daemons and clients (as root)
#   tests/slurm/cluster.sh start DIR     # munged, slurmctld, slurmd; waits until the node is idle
#   tests/slurm/cluster.sh status DIR    # exit 0 when the node answers and is up
#   tests/slurm/cluster.sh stop DIR      # cancels the jobs, stops the daemons by their PIDs
#
# Everything the cluster writes lives in DIR (its slurm.conf, state, spool, logs, PIDs) except
# munged's key and socket, which go to a folder of their own under /tmp (munged runs as the munge
# user, who cannot enter a private DIR; the folder is named in DIR/munge.dir). The ports are free
# ones chosen at each start, so the cluster does not meet a system Slurm or another test run.
# Clients find the cluster through SLURM_CONF: `start` prints `SLURM_CONF=DIR/slurm.conf` last.
#
# It follows /work/shared/CONVENTIONS.md "Batch jobs on HPC schedulers". Failures print a reason
# (and the daemons' last log lines) on stderr and exit non-zero: 3 when the packages are missing,
# 4 when not root, 1 otherwise.
set -euo pipefail

PACKAGES=(slurmctld slurmd slurm-client munge)
COMMANDS=(munged slurmctld slurmd sbatch srun scontrol sinfo squeue scancel setpriv)
DAEMONS=(munged slurmctld slurmd)
READY_SECONDS=60

fail() {  # fail CODE MESSAGE...
    local code=$1
    shift
    echo "cluster.sh: $*" >&2
    exit "$code"
}

usage() {
    fail 1 "usage: $0 install | start DIR | status DIR | stop DIR"
}

missing_commands() {
    local name missing=()
    for name in "${COMMANDS[@]}"; do
        PATH=$PATH:/usr/sbin:/sbin command -v "$name" >/dev/null || missing+=("$name")
    done
    echo "${missing[*]}"
}

install_packages() {
    [ "$(id -u)" -eq 0 ] || fail 4 "installing ${PACKAGES[*]} needs root"
    command -v apt-get >/dev/null || fail 3 "no apt-get: install ${PACKAGES[*]} with this system's package manager"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q || fail 3 "apt-get update failed"
    apt-get install -y -q --no-install-recommends "${PACKAGES[@]}" || fail 3 "apt-get install ${PACKAGES[*]} failed"
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

pid_alive() {  # pid_alive NAME: the PID recorded for NAME is a running process of that name
    local file=$DIR/pids/$1.pid pid
    [ -s "$file" ] || return 1
    pid=$(<"$file")
    [ -r "/proc/$pid/comm" ] && [ "$(<"/proc/$pid/comm")" = "$1" ]
}

node_state() {
    SLURM_CONF=$DIR/slurm.conf timeout 10 sinfo --noheader --nodes=localhost --format=%T 2>/dev/null | head -n 1
}

node_up() {  # the node answers and takes jobs (idle, or running some)
    case $(node_state) in
        idle* | mixed* | allocated* | completing*) return 0 ;;
        *) return 1 ;;
    esac
}

show_logs() {
    local log
    for log in "$DIR"/log/* "$(munge_dir)/munged.log"; do
        [ -s "$log" ] || continue
        echo "--- last lines of $log" >&2
        tail -n 15 "$log" >&2
    done
}

munge_dir() {  # the folder of munged's key and socket, if one was made
    [ ! -s "$DIR/munge.dir" ] || cat "$DIR/munge.dir"
}

write_config() {
    local munge=$1 memory
    # slurmd drains a node that claims more memory than it has: give Slurm what slurmd measures.
    memory=$(slurmd -C | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p')
    cat >"$DIR/slurm.conf" <<EOF
# Written by tests/slurm/cluster.sh: a single-node test cluster, everything under $DIR.
ClusterName=dacli-test
SlurmctldHost=localhost
SlurmctldPort=$(free_port)
SlurmdPort=$(free_port)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# cred_expire: a requeued job may start again cred_expire + 1 s after it ended (default 120 s)
AuthInfo=socket=$munge/munge.socket,cred_expire=5
MailProg=/bin/true
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
# the daemons' own PID files (cluster.sh keeps the PIDs it started in pids/NAME.pid)
SlurmctldPidFile=$DIR/pids/slurmctld.own.pid
SlurmdPidFile=$DIR/pids/slurmd.own.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
# debug2: slurmctld logs "Testing job time limits" at each time-limit check (every 30 s, fixed);
# test_slurm.py submits a time-limited job just after one, so its --signal comes at a known time
SlurmctldDebug=debug2
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
ReturnToService=2
# a test cluster reacts at once: schedule every second, cancel a job whose dependency failed
SchedulerParameters=sched_interval=1,bf_interval=1,kill_invalid_depend
# scontrol shows a finished job for 30 minutes (there is no accounting database to ask later)
MinJobAge=1800
SlurmctldTimeout=10
SlurmdTimeout=10
InactiveLimit=0
# at a time limit: SIGTERM, then SIGKILL 10 s later
KillWait=10
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=${memory:-1000} State=UNKNOWN
# two jobs per core: a requeued job starts again at once instead of queueing behind the others
PartitionName=test Nodes=localhost Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:2
EOF
}

start_daemon() {  # start_daemon NAME COMMAND...: in its own session, output to DIR/log/NAME.out
    local name=$1
    shift
    local pid waited
    setsid "$@" </dev/null >"$DIR/log/$name.out" 2>&1 9>&- &  # 9: the lock, not theirs to hold
    pid=$!
    echo "$pid" >"$DIR/pids/$name.pid"
    for waited in $(seq 50); do  # until setsid (and setpriv) have made way for NAME
        pid_alive "$name" || [ ! -d "/proc/$pid" ] && return
        sleep 0.1
    done
}

start() {
    [ "$(id -u)" -eq 0 ] || fail 4 "starting munged, slurmctld and slurmd needs root"
    local missing munge waited state name
    missing=$(missing_commands)
    [ -z "$missing" ] || fail 3 "not installed: $missing (run '$0 install' as root, or apt-get install ${PACKAGES[*]})"
    if pid_alive munged && pid_alive slurmctld && pid_alive slurmd && node_up; then
        echo "cluster.sh: already running in $DIR" >&2
        echo "SLURM_CONF=$DIR/slurm.conf"
        return
    fi
    stop_daemons  # what is left of an earlier start
    mkdir -p "$DIR"/{state,spool,log,pids}
    munge=$(munge_dir)
    if [ -z "$munge" ] || [ ! -d "$munge" ]; then
        munge=$(mktemp -d /tmp/dacli-slurm-munge.XXXXXX)
        echo "$munge" >"$DIR/munge.dir"
        dd if=/dev/urandom of="$munge/munge.key" bs=1024 count=1 status=none
        chown -R munge:munge "$munge"
        chmod 0711 "$munge"  # munged wants its socket reachable by everyone
        chmod 0600 "$munge/munge.key"
    fi
    write_config "$munge"  # afresh: the ports of an earlier start may be taken by now

    start_daemon munged setpriv --reuid=munge --regid=munge --init-groups \
        munged --foreground --key-file="$munge/munge.key" --socket="$munge/munge.socket" \
        --pid-file="$munge/munged.pid" --log-file="$munge/munged.log" --seed-file="$munge/munged.seed"
    for waited in $(seq 50); do
        [ -S "$munge/munge.socket" ] && break
        pid_alive munged || { show_logs; fail 1 "munged exited at start (see the log above)"; }
        sleep 0.1
    done
    [ -S "$munge/munge.socket" ] || { show_logs; fail 1 "munged did not open $munge/munge.socket in 5 s"; }

    export SLURM_CONF=$DIR/slurm.conf
    # -i: ignore the state of an earlier cluster in this DIR (jobs, node states); -D: foreground
    start_daemon slurmctld slurmctld -D -i -f "$SLURM_CONF"
    start_daemon slurmd slurmd -D -N localhost -f "$SLURM_CONF"
    for waited in $(seq "$READY_SECONDS"); do
        state=$(node_state)
        [ "$state" = idle ] && break
        for name in "${DAEMONS[@]}"; do
            pid_alive "$name" || { show_logs; fail 1 "$name exited at start (see its log above)"; }
        done
        sleep 1
    done
    if [ "$state" != idle ]; then
        show_logs
        fail 1 "the node is '${state:-not answering}', not idle, ${READY_SECONDS} s after the daemons started"
    fi
    echo "cluster.sh: node idle after ${waited} s; $(sinfo --version)" >&2
    echo "SLURM_CONF=$SLURM_CONF"
}

stop_daemons() {  # the daemons recorded in DIR/pids, newest first; TERM, then KILL after 10 s
    local name pid waited
    for name in slurmd slurmctld munged; do
        pid_alive "$name" || continue
        pid=$(<"$DIR/pids/$name.pid")
        kill -TERM "$pid"
        for waited in $(seq 100); do
            [ -d "/proc/$pid" ] || break
            sleep 0.1
        done
        [ -d "/proc/$pid" ] && kill -KILL "$pid"
        rm -f "$DIR/pids/$name.pid"
    done
}

stop() {
    local jobs waited
    if pid_alive slurmctld; then  # cancel what still runs: slurmd's exit leaves job steps running
        export SLURM_CONF=$DIR/slurm.conf
        jobs=$(timeout 10 squeue --noheader --format=%A 2>/dev/null | sort -u | tr '\n' ' ' || true)
        if [ -n "${jobs// /}" ]; then
            # shellcheck disable=SC2086  # one argument per job id
            timeout 10 scancel $jobs || true
            for waited in $(seq 30); do
                [ -z "$(timeout 10 squeue --noheader --states=running,completing 2>/dev/null)" ] && break
                sleep 0.5
            done
        fi
    fi
    stop_daemons
    if [ -s "$DIR/munge.dir" ]; then
        rm -rf "$(<"$DIR/munge.dir")"
        rm -f "$DIR/munge.dir"
    fi
    echo "cluster.sh: stopped the cluster in $DIR" >&2
}

status() {
    local name
    for name in "${DAEMONS[@]}"; do
        pid_alive "$name" || fail 1 "$name is not running (no live PID in $DIR/pids/$name.pid)"
    done
    echo "node localhost: $(node_state)"
    node_up
}

command=${1:-}
case $command in
    install) [ $# -eq 1 ] || usage; install_packages ;;
    start | stop | status)
        [ $# -eq 2 ] || usage
        mkdir -p "$2"
        DIR=$(cd "$2" && pwd)
        exec 9>"$DIR/.lock"  # one start or stop at a time per DIR (several test workers)
        flock 9
        "$command"
        ;;
    *) usage ;;
esac
