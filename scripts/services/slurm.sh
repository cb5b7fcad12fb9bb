#!/bin/sh
# A real single-node Slurm cluster (Debian slurmctld, slurmd, slurm-client, munge) for tests, the demo and a new
# user trying the cluster path. No systemd: the daemons are started directly and stopped by PID.
#
#   slurm.sh start RUNDIR [CPUS]   # installs what is missing (apt-get, root), writes RUNDIR/slurm.conf, starts a
#                                  # private munged, slurmctld and slurmd, waits (with a deadline) until the node is
#                                  # idle, then prints the configuration to use:
#                                  #   SLURM_CONF=RUNDIR/slurm.conf
#                                  #   PARTITION debug
#                                  #   PIDS <munged> <slurmctld> <slurmd>
#   slurm.sh stop RUNDIR           # stops the three daemons by their PID files (SIGTERM, deadline, SIGKILL)
#   slurm.sh status RUNDIR         # prints the node state (sinfo) and the daemons' PIDs; exit 1 if not running
#   slurm.sh install               # only installs the packages (scripts/install-deps.sh uses it)
#
# Everything lives in RUNDIR (munge key, socket and log in /tmp/dropbox-slurm-munge.*, linked as RUNDIR/munge, since
# munged runs as the munge user and RUNDIR may be private): state, spool, logs, pid files, the job completion file
# (jobcomp/filetxt: finished jobs with their state, which outlives the controller's MinJobAge). Ports are picked
# free, so several clusters (one per test run) can coexist on one machine. With SLURM_ACCOUNTING=1 (start and
# install) accounting comes too: slurmdbd with a private MariaDB (RUNDIR/mysql, its socket and a free loopback
# port; about 6 s more to start), so that sacct knows jobs the controller has forgotten; start then also prints
# "ACCOUNTING slurmdbd <pid> mariadbd <pid>", and stop stops both. Without it the agent tracks jobs with
# squeue/scontrol and the job's own exit record. Exit status: 0 ok, 1 failed to start, 2 usage, 3 cannot install.
#
# The configuration also makes the failure modes the agent handles reproducible (README, "Execution backends"):
# memory is consumable and enforced without cgroups (OverMemoryKill: a job over its --mem is killed and ends
# FAILED, slurmstepd's reason in its output file); partition "urgent" preempts (cancels) jobs of the default
# partition "debug" (they end PREEMPTED); MinJobAge is $SLURM_MIN_JOB_AGE (default 600 s; the tests lower it with
# `scontrol reconfigure` to make the controller forget a job).
set -eu

PACKAGES="slurmctld slurmd slurm-client munge"
# SLURM_ACCOUNTING=1: accounting too (slurmdbd with a private MariaDB in RUNDIR/mysql), so that sacct knows jobs the
# controller has forgotten (MinJobAge).
ACCOUNTING=${SLURM_ACCOUNTING:-0}
[ "$ACCOUNTING" = 1 ] && PACKAGES="$PACKAGES slurmdbd mariadb-server mariadb-client"
usage() { echo "usage: $0 start RUNDIR [CPUS] | stop RUNDIR | status RUNDIR | install" >&2; exit 2; }

missing_packages() {
    m=""
    for p in $PACKAGES; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || m="$m $p"
    done
    echo "$m"
}

install_packages() {
    m=$(missing_packages)
    [ -z "$m" ] && return 0
    SUDO=""
    if [ "$(id -u)" != 0 ]; then
        command -v sudo >/dev/null 2>&1 || { echo "cannot install$m: not root and no sudo" >&2; return 3; }
        SUDO=sudo
    fi
    echo "installing:$m" >&2
    # No service may start from a package script (no init system here).
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null && $SUDO chmod +x /usr/sbin/policy-rc.d
    fi
    if ! DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends --no-upgrade $m >&2; then
        $SUDO apt-get update -qq >&2 || true
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends --no-upgrade $m >&2 || {
            echo "cannot install$m with apt-get" >&2; return 3; }
    fi
}

free_port() {
    /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

alive() { # $1 pid: alive and not a zombie
    [ -n "$1" ] && kill -0 "$1" 2>/dev/null && [ "$(ps -o stat= -p "$1" 2>/dev/null | cut -c1)" != Z ]
}

wait_until() { # $1 tenths of a second, then a command: polls until it succeeds or the deadline passes
    limit=$1; shift; i=0
    while [ $i -lt "$limit" ]; do
        if "$@" >/dev/null 2>&1; then return 0; fi
        i=$((i + 1)); sleep 0.1
    done
    return 1
}

node_idle() { [ "$(SLURM_CONF="$run/slurm.conf" sinfo -h -o %T 2>/dev/null | head -n1)" = idle ]; }

stop_pid() { # $1 pid file
    [ -f "$1" ] || return 0
    pid=$(cat "$1" 2>/dev/null || true)
    if alive "$pid"; then
        kill -TERM "$pid" 2>/dev/null || true
        wait_until 100 sh -c "! kill -0 $pid 2>/dev/null || [ \"\$(ps -o stat= -p $pid | cut -c1)\" = Z ]" || {
            kill -KILL "$pid" 2>/dev/null || true
            wait_until 50 sh -c "! kill -0 $pid 2>/dev/null || [ \"\$(ps -o stat= -p $pid | cut -c1)\" = Z ]" || true
        }
    fi
    rm -f "$1"
}

stop_all() {
    # slurmd first (it kills the jobs it runs), then the controller, then munge.
    stop_pid "$run/slurmd.pid"
    stop_pid "$run/slurmctld.pid"
    stop_pid "$run/slurmdbd.pid"
    stop_pid "$run/mysqld.pid"
    stop_pid "$run/munged.pid"
    # munge's own directory (outside RUNDIR) goes with the cluster.
    if [ -L "$run/munge" ]; then
        mdir=$(readlink "$run/munge")
        case "$mdir" in /tmp/dropbox-slurm-munge.*) rm -rf "$mdir" ;; esac
        rm -f "$run/munge"
    fi
}

start_accounting() { # MariaDB (private datadir, socket, loopback port) and slurmdbd; uses $run, $mdir, $dbd_port
    db_port=$(free_port)
    if [ ! -d "$run/mysql/mysql" ]; then
        mariadb-install-db --no-defaults --datadir="$run/mysql" --user=root --auth-root-authentication-method=socket \
            --skip-test-db >"$run/log/mysql-install.log" 2>&1 || {
            echo "mariadb-install-db failed; see $run/log/mysql-install.log" >&2; return 1; }
    fi
    mariadbd --no-defaults --datadir="$run/mysql" --user=root --socket="$run/mysql.sock" --port="$db_port" \
        --bind-address=127.0.0.1 --pid-file="$run/mysqld.pid" --log-error="$run/log/mysqld.err" \
        --skip-name-resolve </dev/null >/dev/null 2>&1 &
    wait_until 300 test -S "$run/mysql.sock" || { echo "MariaDB did not start; see $run/log/mysqld.err" >&2; return 1; }
    wait_until 100 test -s "$run/mysqld.pid" || return 1
    mariadb --no-defaults -S "$run/mysql.sock" -u root -e "CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' \
        IDENTIFIED BY 'slurm'; GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';" || return 1
    cat > "$run/slurmdbd.conf" <<DBD
AuthType=auth/munge
AuthInfo=socket=$mdir/munge.socket
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=$dbd_port
SlurmUser=root
PidFile=$run/slurmdbd.pid
LogFile=$run/log/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$db_port
StorageUser=slurm
StoragePass=slurm
StorageLoc=slurm_acct_db
DBD
    chmod 600 "$run/slurmdbd.conf"
    # slurmdbd reads slurmdbd.conf next to SLURM_CONF.
    slurmdbd </dev/null >"$run/log/slurmdbd.out" 2>&1 || { echo "slurmdbd did not start; see $run/log/slurmdbd.log" >&2; return 1; }
    wait_until 300 sh -c "SLURM_CONF='$run/slurm.conf' sacctmgr -n list cluster" || {
        echo "slurmdbd does not answer; see $run/log/slurmdbd.log" >&2; return 1; }
    SLURM_CONF="$run/slurm.conf" sacctmgr -i add cluster dropbox >/dev/null 2>&1 || true
}

[ $# -ge 1 ] || usage
case "$1" in
install)
    [ $# -eq 1 ] || usage
    install_packages || exit 3
    ;;
start)
    [ $# -eq 2 ] || [ $# -eq 3 ] || usage
    install_packages || exit 3
    mkdir -p "$2"; run=$(cd "$2" && pwd)
    cpus=${3:-$(nproc)}
    if [ -f "$run/slurmctld.pid" ] && alive "$(cat "$run/slurmctld.pid")"; then
        echo "a cluster is already running in $run (slurm.sh stop $run first)" >&2; exit 1
    fi
    mkdir -p "$run/state" "$run/spool" "$run/log"
    # munged runs as the munge user: its key, socket and logs go to a directory of its own that every user can
    # traverse (RUNDIR may sit in a private directory, such as pytest's); RUNDIR/munge points to it. The key is
    # readable by munge alone.
    if [ ! -L "$run/munge" ]; then
        mdir=$(mktemp -d /tmp/dropbox-slurm-munge.XXXXXX)
        ln -s "$mdir" "$run/munge"
    fi
    mdir=$(readlink "$run/munge")
    mkdir -p "$mdir/key"
    chown -R munge:munge "$mdir"; chmod 0755 "$mdir"; chmod 0700 "$mdir/key"
    if [ ! -f "$mdir/key/munge.key" ]; then
        dd if=/dev/urandom of="$mdir/key/munge.key" bs=1024 count=1 2>/dev/null
        chown munge:munge "$mdir/key/munge.key"; chmod 0400 "$mdir/key/munge.key"
    fi
    ctl_port=$(free_port); d_port=$(free_port)
    mem=$(awk '/MemTotal/ { printf "%d", $2 / 1024 * 0.9 }' /proc/meminfo)
    accounting_lines="AccountingStorageType=accounting_storage/none"
    if [ "$ACCOUNTING" = 1 ]; then
        dbd_port=$(free_port)
        # AccountingStoragePass: the munge socket clients (sacct, sacctmgr, slurmctld) use towards slurmdbd.
        accounting_lines="AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=$dbd_port
AccountingStoragePass=$mdir/munge.socket"
    fi
    cat > "$run/slurm.conf" <<CONF
# Written by scripts/services/slurm.sh: a single-node cluster on this machine.
ClusterName=dropbox
SlurmctldHost=localhost
SlurmctldPort=$ctl_port
SlurmdPort=$d_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$mdir/munge.socket
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
# Memory is a consumable resource, so that a job's --mem is its limit (enforced below); a job that asks for none
# gets its share of the node per core (DefMemPerCPU), so jobs still share the node by cores.
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=$((mem / cpus))
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0
MpiDefault=none
ReturnToService=2
StateSaveLocation=$run/state
SlurmdSpoolDir=$run/spool
SlurmctldPidFile=$run/slurmctld.pid
SlurmdPidFile=$run/slurmd.pid
SlurmctldLogFile=$run/log/slurmctld.log
SlurmdLogFile=$run/log/slurmd.log
JobCompType=jobcomp/filetxt
JobCompLoc=$run/jobcomp.txt
$accounting_lines
# Memory limits enforced without cgroups (none in this container): slurmstepd samples the job's processes every
# second and kills a job whose memory exceeds its --mem (the job ends OUT_OF_MEMORY).
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=task=1
JobAcctGatherParams=OverMemoryKill
# Preemption: a job in partition "urgent" (PriorityTier 2) cancels the jobs of "debug" (tier 1) it needs the
# cores of; they end PREEMPTED (the agent submits its jobs again, up to agent.maxAttempts).
PreemptType=preempt/partition_prio
PreemptMode=CANCEL
MinJobAge=${SLURM_MIN_JOB_AGE:-600}
KillWait=5
OverTimeLimit=0
InactiveLimit=0
SlurmdTimeout=60
NodeName=ci-node NodeHostname=localhost NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP PriorityTier=1
PartitionName=urgent Nodes=ALL MaxTime=INFINITE State=UP PriorityTier=2
CONF
    export SLURM_CONF="$run/slurm.conf"
    runuser -u munge -- /usr/sbin/munged --socket="$mdir/munge.socket" --key-file="$mdir/key/munge.key" \
        --pid-file="$mdir/munged.pid" --log-file="$mdir/munged.log" --seed-file="$mdir/munged.seed" \
        </dev/null || { echo "munged did not start; see $mdir/munged.log" >&2; exit 1; }
    wait_until 100 test -f "$mdir/munged.pid" || { echo "munged wrote no pid file" >&2; exit 1; }
    cp "$mdir/munged.pid" "$run/munged.pid"
    wait_until 100 test -S "$mdir/munge.socket" || { echo "munged socket missing" >&2; stop_all; exit 1; }
    if [ "$ACCOUNTING" = 1 ]; then
        start_accounting || { stop_all; exit 1; }
    fi
    slurmctld -i -f "$run/slurm.conf" </dev/null >"$run/log/slurmctld.out" 2>&1 || {
        echo "slurmctld did not start; see $run/log/slurmctld.log" >&2; stop_all; exit 1; }
    wait_until 150 sh -c "SLURM_CONF='$run/slurm.conf' scontrol ping | grep -q UP" || {
        echo "slurmctld does not answer; see $run/log/slurmctld.log" >&2; stop_all; exit 1; }
    slurmd -N ci-node -f "$run/slurm.conf" </dev/null >"$run/log/slurmd.out" 2>&1 || {
        echo "slurmd did not start; see $run/log/slurmd.log" >&2; stop_all; exit 1; }
    # The node registers, then becomes idle; a loaded machine may take seconds (deadline 60 s).
    if ! wait_until 600 node_idle; then
        echo "the node did not become idle within 60 s: $(sinfo -h -o '%T %E' 2>&1); see $run/log/" >&2
        stop_all; exit 1
    fi
    echo "SLURM_CONF=$run/slurm.conf"
    echo "PARTITION debug"
    echo "PIDS $(cat "$run/munged.pid") $(cat "$run/slurmctld.pid") $(cat "$run/slurmd.pid")"
    [ "$ACCOUNTING" = 1 ] && echo "ACCOUNTING slurmdbd $(cat "$run/slurmdbd.pid") mariadbd $(cat "$run/mysqld.pid")"
    ;;
stop)
    [ $# -eq 2 ] || usage
    [ -d "$2" ] || exit 0
    run=$(cd "$2" && pwd)
    stop_all
    ;;
status)
    [ $# -eq 2 ] || usage
    run=$(cd "$2" && pwd)
    ok=0
    for d in munged slurmctld slurmd; do
        pid=$(cat "$run/$d.pid" 2>/dev/null || true)
        if alive "$pid"; then echo "$d $pid"; else echo "$d not running"; ok=1; fi
    done
    echo "node $(SLURM_CONF="$run/slurm.conf" sinfo -h -o '%T' 2>/dev/null || echo unknown)"
    echo "SLURM_CONF=$run/slurm.conf"
    exit $ok
    ;;
*) usage ;;
esac
