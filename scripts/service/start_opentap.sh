#!/usr/bin/env bash
# Start the OpenTap device (installed as /opt/opentap/bin/start_opentap.sh). Where systemd runs, this is
# `systemctl start opentap` (which waits for the API to answer); on a machine without it (a container), the
# daemon runs in the background with its pid in /run/opentap/opentap.pid and its log in /var/log/opentap/.
set -euo pipefail

BIN="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CONF="${OPENTAP_CONF:-/etc/opentap/opentap.conf}"
RUN_DIR=/run/opentap
PID_FILE="$RUN_DIR/opentap.pid"
LOG_DIR=/var/log/opentap
LOG="$LOG_DIR/opentap.log"

if [ "$(id -u)" != 0 ]; then
    echo "start_opentap.sh: run as root (sudo $0): capturing needs it" >&2
    exit 1
fi
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
    systemctl start opentap.service
    echo "OpenTap started (systemctl status opentap; its log: journalctl -u opentap)"
    exit 0
fi

# The pid in the pid file, if that process is alive and is our daemon (not a recycled pid).
running_pid() {
    local pid
    pid="$(cat "$PID_FILE" 2>/dev/null)" || return 1
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "opentap serve" || return 1
    echo "$pid"
}

if pid="$(running_pid)"; then
    echo "OpenTap is already running (pid $pid)"
    exit 0
fi
rm -f "$PID_FILE"
install -d -m 0755 "$RUN_DIR"
install -d -m 0750 "$LOG_DIR"
echo "--- $(date -u +%Y-%m-%dT%H:%M:%SZ) start_opentap.sh" >>"$LOG"
# setsid: its own session, so a Ctrl-C or a closed terminal where it was started does not reach it
setsid "$BIN/opentap" serve --config "$CONF" --pid-file "$PID_FILE" >>"$LOG" 2>&1 </dev/null &
pid=$!
# The daemon writes the pid file once its API answers (the database migrated, captures recovered first).
for _ in $(seq 1200); do
    if [ -s "$PID_FILE" ]; then
        echo "OpenTap started (pid $pid); its log: $LOG"
        exit 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
        echo "OpenTap did not start; the end of $LOG:" >&2
        tail -n 15 "$LOG" >&2
        exit 1
    fi
    sleep 0.1
done
echo "OpenTap (pid $pid) did not answer within 120 s; see $LOG" >&2
exit 1
