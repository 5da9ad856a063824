#!/usr/bin/env bash
# The flow meter's C code under AddressSanitizer and UndefinedBehaviorSanitizer: a copy of the package with the
# extension built sanitized, and the tests that feed it hostile and real data (mangled frames, damaged pcaps,
# the oracle comparisons) run against that copy. Any out-of-bounds access or undefined operation aborts the
# run. Usage: scripts/sanitized.sh PYTHON [pytest args...] (test.sh calls it with the venv's python).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"  # absolute: we change directory below
shift
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
cp -r "$ROOT/opentap" "$ROOT/tests" "$ROOT/csrc" "$ROOT/pyproject.toml" "$WORK/"
find "$WORK/opentap" -name '_native*.so' -delete
INCLUDE="$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
SUFFIX="$("$PY" -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')"
gcc -shared -fPIC -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all \
    -Wall -I"$INCLUDE" "$ROOT"/csrc/*.c -o "$WORK/opentap/_native$SUFFIX"
cd "$WORK"
# Python itself is not built with ASan: the runtime must be loaded first, and CPython's own allocations at exit
# are not leaks of ours.
export LD_PRELOAD="$(gcc -print-file-name=libasan.so)"
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
"$PY" -c 'import opentap._native as n, sys; sys.exit(0 if n.__file__.startswith(sys.argv[1]) else "not the sanitized build")' "$WORK"
# --capture=sys: a sanitizer writes its report to file descriptor 2, which must reach the terminal
"$PY" -m pytest -q -p no:cacheprovider --capture=sys "$@"
