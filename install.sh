#!/usr/bin/env bash
# Install the OpenTap device from this checkout, or upgrade an installed one (README.md: Installing a device).
#
#   sudo ./install.sh                  asks for the settings and observation points
#   sudo ./install.sh --yes            takes every default without a question
#   sudo ./install.sh --answers FILE   takes the answers from a TOML file (README: the answers file)
#
# Program: a venv in /opt/opentap with OpenTap installed from a wheel built here, /usr/local/bin/opentap,
# start_opentap.sh and stop_opentap.sh. Config: /etc/opentap/. Data and database: /var/lib/opentap/.
# Service: opentap.service, enabled when systemd runs. When a config is already there this is an upgrade:
# the config, the database (migrated), the tokens and the data are kept, and what changed is printed.
# pip honours its usual settings, so an offline install can use PIP_NO_INDEX=1 PIP_FIND_LINKS=DIR.
set -euo pipefail

SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PREFIX=/opt/opentap
ETC=/etc/opentap
CONF="$ETC/opentap.conf"
STATE=/var/lib/opentap
LOG_DIR=/var/log/opentap
UNIT=/etc/systemd/system/opentap.service
SERVICE_USER=opentap
# Debian's own Python: python3-venv and python3-dev (for the flow meter's C extension) are made for it
PYTHON="${OPENTAP_PYTHON:-/usr/bin/python3}"

usage() {
    sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
}

if [ "$(id -u)" != 0 ]; then
    echo "install.sh: run as root (sudo $0 $*): it installs packages, a service and a system user" >&2
    exit 1
fi
MODE=()
while [ $# -gt 0 ]; do
    case "$1" in
        -y|--yes) MODE=(--yes) ;;
        --answers)
            [ $# -ge 2 ] || { echo "install.sh: --answers needs a file" >&2; exit 2; }
            [ -r "$2" ] || { echo "install.sh: cannot read the answers file $2" >&2; exit 2; }
            MODE=(--answers "$(realpath "$2")")
            shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "install.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done

CHANGES=()
changed() {
    CHANGES+=("$1")
    echo ">> $1"
}

# --- Debian packages: only the missing ones, so a re-run needs no network -------------------------------
# shellcheck source=scripts/bootstrap.sh
source "$SRC/scripts/bootstrap.sh"  # DEBIAN_PACKAGES: the one list, shared with quickstart.sh and test.sh
missing=()
for pkg in $DEBIAN_PACKAGES; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo ">> installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    changed "Debian packages installed: ${missing[*]}"
fi

# --- an upgrade stops the running daemon first, and starts it again at the end ---------------------------
UPGRADE=0
[ -f "$CONF" ] && UPGRADE=1
WAS_RUNNING=0
if [ -x "$PREFIX/bin/stop_opentap.sh" ]; then
    if { [ -d /run/systemd/system ] && systemctl is-active --quiet opentap.service; } \
        || { [ -s /run/opentap/opentap.pid ] && kill -0 "$(cat /run/opentap/opentap.pid)" 2>/dev/null; }; then
        WAS_RUNNING=1
        echo ">> stopping the running device for the upgrade (its captures resume when it starts again)"
        "$PREFIX/bin/stop_opentap.sh"
    fi
fi
OLD_VERSION="$(cat "$PREFIX/VERSION" 2>/dev/null || echo "not installed")"

# --- the program: a venv with OpenTap from a wheel built from this checkout --------------------------------
want="$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
have="$("$PREFIX/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || echo none)"
if [ "$have" != "$want" ]; then  # none yet, or Debian's Python moved on: a venv is tied to its Python
    echo ">> creating the venv $PREFIX (Python $want)"
    "$PYTHON" -m venv --clear "$PREFIX"
    [ "$have" = none ] || changed "venv remade for Python $want (was $have)"
fi
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
# Build from a copy: the checkout stays as it was (no root-owned build/ in it, no in-place extension in it).
mkdir "$WORK/src"
tar -C "$SRC" --exclude=./.git --exclude=./.venv --exclude=./run --exclude=./build --exclude='*.egg-info' \
    --exclude='__pycache__' --exclude='*.so' -cf - . | tar -C "$WORK/src" -xf -
echo ">> building and installing OpenTap into $PREFIX"
"$PREFIX/bin/pip" wheel -q --no-deps -w "$WORK/wheel" "$WORK/src"
wheel="$(ls "$WORK"/wheel/opentap-*.whl)"
"$PREFIX/bin/pip" install -q "$wheel"  # its dependencies
"$PREFIX/bin/pip" install -q --no-deps --force-reinstall "$wheel"  # the same version number may be new code
commit="$(git -c safe.directory="$SRC" -C "$SRC" describe --always --dirty 2>/dev/null || echo "not a git checkout")"
NEW_VERSION="$("$PREFIX/bin/python" -c 'import opentap; print(opentap.__version__)') ($commit)"
echo "$NEW_VERSION" >"$PREFIX/VERSION"
[ "$OLD_VERSION" = "$NEW_VERSION" ] || changed "OpenTap $OLD_VERSION -> $NEW_VERSION"
install -m 0755 "$SRC/scripts/service/start_opentap.sh" "$SRC/scripts/service/stop_opentap.sh" "$PREFIX/bin/"
install -m 0755 "$SRC/uninstall.sh" "$PREFIX/bin/uninstall_opentap.sh"
install -m 0644 "$SRC/README.md" "$PREFIX/README.md"
ln -sfn "$PREFIX/bin/opentap" /usr/local/bin/opentap

# --- the system user tcpdump drops to (capture_user), and the directories ----------------------------------
if ! getent passwd "$SERVICE_USER" >/dev/null; then
    group=(--user-group)
    getent group "$SERVICE_USER" >/dev/null && group=(--gid "$SERVICE_USER")
    useradd --system "${group[@]}" --home-dir "$STATE" --no-create-home --shell /usr/sbin/nologin \
        --comment "OpenTap captures" "$SERVICE_USER"
    changed "system user $SERVICE_USER created"
fi
install -d -m 0755 "$ETC" "$STATE"
install -d -m 0750 "$LOG_DIR"

# --- the config: the interview on a new device, kept on an upgrade -----------------------------------------
if [ "$UPGRADE" = 1 ]; then
    [ ${#MODE[@]} -eq 0 ] || echo ">> $CONF exists: this is an upgrade, it is kept and no question is asked"
else
    # Ctrl-C or a bad answers file: the program stays, nothing is written in $ETC, and a re-run asks again
    if ! "$PREFIX/bin/opentap" config init --interactive --config "$CONF" --data-dir "$STATE/data" \
        --database-url "sqlite:///$STATE/opentap.db" --socket /run/opentap/api.sock \
        --capture-user "$SERVICE_USER" "${MODE[@]}"; then
        echo "install.sh: OpenTap is installed in $PREFIX but not configured; run install.sh again" >&2
        exit 1
    fi
    changed "config written: $CONF"
fi
"$PREFIX/bin/opentap" migrate --config "$CONF" | sed 's/^/>> /'

# --- the service -------------------------------------------------------------------------------------------
if ! cmp -s "$SRC/scripts/service/opentap.service" "$UNIT" 2>/dev/null; then
    install -D -m 0644 "$SRC/scripts/service/opentap.service" "$UNIT"
    changed "service unit installed: $UNIT"
fi
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload
    systemctl enable --quiet opentap.service
else
    echo ">> systemd is not running here: start_opentap.sh runs the daemon in the background (log in $LOG_DIR)"
fi
if [ "$WAS_RUNNING" = 1 ]; then
    "$PREFIX/bin/start_opentap.sh"
fi

echo
if [ ${#CHANGES[@]} -eq 0 ]; then
    echo "OpenTap $NEW_VERSION: nothing changed."
else
    echo "OpenTap $NEW_VERSION. What changed:"
    printf '  - %s\n' "${CHANGES[@]}"
fi
echo "Start: sudo $PREFIX/bin/start_opentap.sh    Stop: sudo $PREFIX/bin/stop_opentap.sh    Check: sudo opentap doctor"
