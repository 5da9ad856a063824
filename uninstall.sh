#!/usr/bin/env bash
# Remove the OpenTap device's program and service (installed by install.sh; also /opt/opentap/bin/
# uninstall_opentap.sh). The config (/etc/opentap: tokens, TLS pair) and the data (/var/lib/opentap: database,
# captures, the device id that marks its tc rules) are kept, so a later install.sh carries on where this one
# stopped, unless --purge, which removes them, the logs and the system user too.
set -euo pipefail

PREFIX=/opt/opentap
UNIT=/etc/systemd/system/opentap.service
SERVICE_USER=opentap

if [ "$(id -u)" != 0 ]; then
    echo "uninstall.sh: run as root (sudo $0 $*)" >&2
    exit 1
fi
PURGE=0
case "${1:-}" in
    "") ;;
    --purge) PURGE=1 ;;
    -h|--help) sed -n '2,5p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "uninstall.sh: unknown option $1 (only --purge)" >&2; exit 2 ;;
esac

if [ -x "$PREFIX/bin/stop_opentap.sh" ]; then
    "$PREFIX/bin/stop_opentap.sh"  # captures end their segment cleanly and are recorded as stopped
fi
if [ -d /run/systemd/system ] && [ -f "$UNIT" ]; then
    systemctl disable --quiet opentap.service || true
fi
rm -f "$UNIT"
[ -d /run/systemd/system ] && systemctl daemon-reload
if [ "$(readlink /usr/local/bin/opentap 2>/dev/null)" = "$PREFIX/bin/opentap" ]; then
    rm -f /usr/local/bin/opentap
fi
rm -rf "$PREFIX"
echo "removed: $PREFIX, /usr/local/bin/opentap, the service $UNIT"

if [ "$PURGE" = 1 ]; then
    rm -rf /etc/opentap /var/lib/opentap /var/log/opentap /run/opentap
    if getent passwd "$SERVICE_USER" >/dev/null; then
        userdel "$SERVICE_USER"
    fi
    if getent group "$SERVICE_USER" >/dev/null; then
        groupdel "$SERVICE_USER"
    fi
    echo "purged: /etc/opentap, /var/lib/opentap, /var/log/opentap and the user $SERVICE_USER"
    echo "(mirrors this device made with tc stay until removed: tc filter show dev IFACE ingress|egress)"
else
    echo "kept: /etc/opentap (config, tokens, TLS pair) and /var/lib/opentap (database, captures);" \
        "uninstall.sh --purge removes them"
fi
