#!/usr/bin/env bash
# Start a single-node Slurm cluster on this (Debian bookworm) machine.
#
# Used by CI and by tests/slurm_cluster.py (the pytest fixture of the `slurm`
# tests), so both share one set-up. Idempotent: re-running it on a machine
# where the cluster already runs only checks that the node is idle.
#
# What it does (as root):
#   1. apt-get install slurm-wlm munge      (only if `sbatch` is missing)
#   2. create /etc/munge/munge.key          (only if absent), start munged
#   3. write /etc/slurm/slurm.conf          (only if absent, written by an older
#                                            version of this script, or written by
#                                            us and NVD_SLURM_REWRITE_CONF=1)
#   4. start slurmctld and slurmd           (only those not already running)
#   5. wait until `sinfo` shows the node idle (NVD_SLURM_WAIT_S, default 60 s)
#
# Cluster: ClusterName=nvd, one node `localhost` (CPUs = nproc, RealMemory =
# available memory minus a margin), two partitions on that node: `debug`
# (Default=YES) and `gpuq` (not the default, so a test that asks for it shows
# that the profile's partition reaches sbatch; it has no GPUs). No accounting
# database (so `sacct` does not work: use `--slurm-status-command squeue`,
# which profiles/slurm picks by itself; MinJobAge=600 keeps finished jobs
# visible to squeue and `scontrol show job` for 10 minutes).
#
# Environment knobs:
#   NVD_SLURM_WAIT_S=60          seconds to wait for the node to become idle
#   NVD_SLURM_REWRITE_CONF=1     rewrite a slurm.conf written by this script
#   NVD_SLURM_FORCE_CONF=1       overwrite a slurm.conf NOT written by this script
set -euo pipefail

SLURM_CONF=/etc/slurm/slurm.conf          # Debian's slurm 22.05 reads this path
MUNGE_KEY=/etc/munge/munge.key
LOG_DIR=/var/log/slurm
MARKER="# Written by nvd .ci/setup_slurm.sh"
# Bump when the written slurm.conf changes: a conf written by an older version
# of this script is rewritten (and slurmctld reconfigured) on the next run.
CONF_VERSION="nvd-slurm-conf-version: 2"
WAIT_S="${NVD_SLURM_WAIT_S:-60}"

log() { printf '[setup_slurm] %s\n' "$*" >&2; }
die() { printf '[setup_slurm] ERROR: %s\n' "$*" >&2; exit 1; }

dump_logs() {
    log "---- diagnostics ----"
    for f in "$LOG_DIR/slurmctld.log" "$LOG_DIR/slurmd.log" /var/log/munge/munged.log; do
        if [[ -f "$f" ]]; then
            log "---- last 40 lines of $f ----"
            tail -n 40 "$f" >&2 || true
        else
            log "---- $f: missing ----"
        fi
    done
    log "---- sinfo ----"
    sinfo -N -l >&2 2>&1 || true
    scontrol show node localhost >&2 2>&1 || true
    log "---- processes ----"
    for d in munged slurmctld slurmd; do
        pgrep -a -x "$d" >&2 || log "$d is not running"
    done
}

if [[ "$(id -u)" -ne 0 ]]; then
    die "must run as root (it installs Debian packages and starts munged/slurmctld/slurmd); try: sudo $0"
fi

# ---------------------------------------------------------------- 1. packages
if ! command -v sbatch >/dev/null 2>&1 || ! command -v slurmctld >/dev/null 2>&1 \
        || ! command -v slurmd >/dev/null 2>&1 || ! command -v munged >/dev/null 2>&1; then
    command -v apt-get >/dev/null 2>&1 || die "sbatch is missing and apt-get is unavailable: install slurm-wlm and munge by hand"
    log "installing slurm-wlm and munge with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || die "apt-get update failed"
    apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null \
        || die "apt-get install slurm-wlm munge failed"
fi
command -v sbatch >/dev/null 2>&1 || die "sbatch still missing after installation"

# ------------------------------------------------------------------- 2. munge
id munge >/dev/null 2>&1 || die "user 'munge' missing (is the munge package installed?)"
install -d -o munge -g munge -m 0700 /etc/munge
install -d -o munge -g munge -m 0700 /var/lib/munge
install -d -o munge -g munge -m 0700 /var/log/munge
install -d -o munge -g munge -m 0755 /run/munge
if [[ ! -s "$MUNGE_KEY" ]]; then
    log "creating $MUNGE_KEY"
    if command -v mungekey >/dev/null 2>&1; then
        mungekey --create --keyfile="$MUNGE_KEY" --force
    else
        dd if=/dev/urandom of="$MUNGE_KEY" bs=1 count=1024 status=none
    fi
fi
chown munge:munge "$MUNGE_KEY"
chmod 0400 "$MUNGE_KEY"

if ! pgrep -x munged >/dev/null 2>&1; then
    log "starting munged"
    runuser -u munge -- /usr/sbin/munged || { dump_logs; die "munged failed to start"; }
fi
for _ in $(seq 1 20); do
    munge -n </dev/null | unmunge >/dev/null 2>&1 && break
    sleep 0.5
done
munge -n </dev/null | unmunge >/dev/null 2>&1 || { dump_logs; die "munge round trip (munge -n | unmunge) fails"; }

# -------------------------------------------------------------- 3. slurm.conf
write_conf() {
    local cpus mem_avail real_mem margin
    cpus="$(nproc)"
    # "available" column of free -m (memory usable without swapping); keep
    # 10 % (at least 512 MB) for the daemons and the submitting snakemake.
    mem_avail="$(free -m | awk '/^Mem:/ {print $7}')"
    margin=$(( mem_avail / 10 ))
    (( margin < 512 )) && margin=512
    real_mem=$(( mem_avail - margin ))
    (( real_mem < 256 )) && die "too little free memory for a Slurm node (${mem_avail} MB available)"
    install -d -m 0755 /etc/slurm
    cat >"$SLURM_CONF.tmp" <<EOF
$MARKER on $(date -u +%Y-%m-%dT%H:%M:%SZ)
# $CONF_VERSION
# Single-node test cluster; see .ci/setup_slurm.sh.
ClusterName=nvd
SlurmctldHost=localhost
AuthType=auth/munge
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
# keep finished jobs visible to squeue for 10 min (the executor plugin's
# squeue status command needs MinJobAge >= 3 x its first status-check delay)
MinJobAge=600
ReturnToService=2
SlurmctldPidFile=/run/slurm/slurmctld.pid
SlurmdPidFile=/run/slurm/slurmd.pid
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
SlurmctldTimeout=30
SlurmdTimeout=60
NodeName=localhost CPUs=$cpus RealMemory=$real_mem State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
PartitionName=gpuq Nodes=localhost Default=NO MaxTime=INFINITE State=UP
EOF
    mv "$SLURM_CONF.tmp" "$SLURM_CONF"
    log "wrote $SLURM_CONF (CPUs=$cpus RealMemory=$real_mem MB)"
}

conf_written=0
if [[ ! -f "$SLURM_CONF" ]]; then
    write_conf; conf_written=1
elif grep -qF "$MARKER" "$SLURM_CONF"; then
    if [[ "${NVD_SLURM_REWRITE_CONF:-0}" == 1 ]]; then
        write_conf; conf_written=1
    elif ! grep -qF "$CONF_VERSION" "$SLURM_CONF"; then
        log "$SLURM_CONF was written by an older version of this script: rewriting it"
        write_conf; conf_written=1
    else
        log "keeping existing $SLURM_CONF (set NVD_SLURM_REWRITE_CONF=1 to rewrite it)"
    fi
elif [[ "${NVD_SLURM_FORCE_CONF:-0}" == 1 ]]; then
    cp -p "$SLURM_CONF" "$SLURM_CONF.bak.$(date +%s)"
    write_conf; conf_written=1
else
    die "$SLURM_CONF exists and was not written by this script; refusing to overwrite it (set NVD_SLURM_FORCE_CONF=1 to replace it; a backup is kept)"
fi

install -d -m 0755 /run/slurm "$LOG_DIR" /var/spool/slurmctld /var/spool/slurmd

# ----------------------------------------------------------------- 4. daemons
if pgrep -x slurmctld >/dev/null 2>&1; then
    if (( conf_written )); then
        log "slurmctld already running: scontrol reconfigure"
        scontrol reconfigure || log "scontrol reconfigure failed (continuing)"
    fi
else
    log "starting slurmctld"
    slurmctld || { dump_logs; die "slurmctld failed to start"; }
fi
if ! pgrep -x slurmd >/dev/null 2>&1; then
    log "starting slurmd"
    slurmd || { dump_logs; die "slurmd failed to start"; }
fi

# --------------------------------------------------------------- 5. wait idle
deadline=$(( SECONDS + WAIT_S ))
state=""
while (( SECONDS < deadline )); do
    state="$(sinfo -h -N -n localhost -o '%t' 2>/dev/null | head -n1 || true)"
    case "$state" in
        idle|mix|alloc|comp) break ;;   # usable (busy counts: jobs may be running)
        down*|drain*|drng*|fail*)
            # e.g. after a restart: ReturnToService=2 normally handles it
            scontrol update NodeName=localhost State=RESUME >/dev/null 2>&1 || true ;;
    esac
    sleep 1
done
if [[ "$state" =~ ^(idle|mix|alloc|comp)$ ]]; then
    # the state may come from slurmctld's saved state: check the daemons too
    if ! pgrep -x slurmd >/dev/null || ! pgrep -x slurmctld >/dev/null \
            || ! scontrol ping 2>/dev/null | grep -q UP; then
        state="daemons-not-running"
    # the tests submit to gpuq and expect debug to be the default
    elif [[ "$(sinfo -h -o '%P' 2>/dev/null | sort | tr '\n' ' ')" != "debug* gpuq " ]]; then
        state="partitions-not-debug*-and-gpuq"
    fi
fi
case "$state" in
    idle|mix|alloc|comp)
        log "Slurm cluster ready: node localhost is '$state', partitions 'debug' (default) and 'gpuq' (config $SLURM_CONF)" ;;
    *)
        dump_logs
        die "node 'localhost' did not become idle within ${WAIT_S}s (last sinfo state: '${state:-none}')" ;;
esac
