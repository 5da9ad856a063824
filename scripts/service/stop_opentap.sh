#!/usr/bin/env bash
# Stop the OpenTap device (installed as /opt/opentap/bin/stop_opentap.sh): `systemctl stop opentap` where
# systemd runs, else SIGTERM to the daemon started by start_opentap.sh and a wait until it is gone. Either way
# the daemon ends each running capture's segment cleanly (open flows written out) and records the stop;
# the captures resume at the next start.
set -euo pipefail

PID_FILE=/run/opentap/opentap.pid
WAIT_SECONDS=90  # as systemd's TimeoutStopSec in opentap.service

if [ "$(id -u)" != 0 ]; then
    echo "stop_opentap.sh: run as root (sudo $0)" >&2
    exit 1
fi
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
    systemctl stop opentap.service
    echo "OpenTap stopped"
    exit 0
fi

running_pid() {
    local pid
    pid="$(cat "$PID_FILE" 2>/dev/null)" || return 1
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "opentap serve" || return 1
    echo "$pid"
}

# Alive and not a zombie: a daemon whose parent is gone may wait a moment to be reaped.
alive() {
    local state
    state="$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)" || return 1
    [ -n "$state" ] && [ "$state" != Z ]
}

if ! pid="$(running_pid)"; then
    rm -f "$PID_FILE"
    echo "OpenTap is not running"
    exit 0
fi
kill -TERM "$pid"
for _ in $(seq $((WAIT_SECONDS * 10))); do
    if ! alive "$pid"; then
        rm -f "$PID_FILE"
        echo "OpenTap stopped"
        exit 0
    fi
    sleep 0.1
done
echo "OpenTap (pid $pid) did not stop within $WAIT_SECONDS s: killing it (its captures resume as after a crash)" >&2
kill -KILL "$pid" 2>/dev/null || true
rm -f "$PID_FILE"
exit 1
