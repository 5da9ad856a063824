#!/usr/bin/env bash
# The whole test suite: sets up what it needs, lints, then runs pytest. Tests that need root and network
# namespaces run when this is run as root (as CI does) and are skipped with the reason otherwise.
source "$(dirname "$0")/scripts/bootstrap.sh"
bootstrap "test" "postgresql softflowd nfdump tshark openssh-server openssh-client procps"
cd "$ROOT"
echo ">> ruff"
"$VENV/bin/ruff" check .
echo ">> pytest"
set +e
"$VENV/bin/python" -m pytest -ra "$@"
rc=$?
set -e
if [ "$rc" = 5 ]; then
    echo "!! pytest collected no tests: that is a failure, not a pass" >&2
    exit 1
fi
exit "$rc"
