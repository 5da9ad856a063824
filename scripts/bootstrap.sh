# Sourced by quickstart.sh and test.sh: system packages (when root) and the project's venv.
# Usage: bootstrap "<extra pip extras>" "<extra Debian packages>"
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${OPENTAP_VENV:-$ROOT/.venv}"
# libusb-1.0-0: the Phidget22 library (Phidgets sensors) needs it
DEBIAN_PACKAGES="tcpdump libpcap0.8 iproute2 python3-venv python3-pip gcc libc6-dev python3-dev libusb-1.0-0"

bootstrap() {
    local extras="$1" debs="$DEBIAN_PACKAGES ${2:-}"
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo ">> installing Debian packages: $debs"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        # shellcheck disable=SC2086  # word splitting of the package list is intended
        apt-get install -y -qq --no-install-recommends $debs >/dev/null
    elif ! command -v tcpdump >/dev/null && [ ! -x /usr/sbin/tcpdump ]; then
        echo "!! tcpdump is missing and we are not root: install it (apt-get install tcpdump) for packet captures" >&2
    fi
    if [ ! -x "$VENV/bin/python" ]; then
        echo ">> creating $VENV"
        python3 -m venv "$VENV"
    fi
    echo ">> installing Python packages into $VENV"
    "$VENV/bin/pip" install -q --upgrade pip >/dev/null
    "$VENV/bin/pip" install -q -e "$ROOT${extras:+[$extras]}"
    # byte-compiled now, as a regular (non-editable) install is: where PYTHONDONTWRITEBYTECODE is set, nothing
    # else writes the .pyc files, and every command would compile the package again as it starts (a third of
    # what `opentap flows` takes on a 1-million-packet file)
    "$VENV/bin/python" -m compileall -q "$ROOT/opentap" >/dev/null
}
