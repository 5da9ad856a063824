#!/usr/bin/env bash
# The whole test suite: sets up what it needs, lints (ruff, the import layers), runs pytest, then runs the tests
# that feed the C extension again against a build with AddressSanitizer and UBSan. Tests that need root and
# network namespaces run when this is run as root (as CI does) and are skipped with the reason otherwise.
source "$(dirname "$0")/scripts/bootstrap.sh"
# systemd: systemd-analyze verifies the unit file (the installer's test); shellcheck: the operator's scripts;
# chromium, chromium-driver and a font: the web interface's browser test
bootstrap "test" "postgresql softflowd nfdump pmacct tshark openssh-server openssh-client procps systemd shellcheck chromium chromium-driver fonts-liberation"
cd "$ROOT"
echo ">> ruff"
"$VENV/bin/ruff" check .
echo ">> shellcheck"
shellcheck -x install.sh uninstall.sh scripts/service/start_opentap.sh scripts/service/stop_opentap.sh
echo ">> lint-imports"
"$VENV/bin/lint-imports"
echo ">> pytest"
set +e
"$VENV/bin/python" -m pytest -ra --durations=40 "$@"
rc=$?
set -e
if [ "$rc" = 5 ]; then
    echo "!! pytest collected no tests: that is a failure, not a pass" >&2
    exit 1
fi
if [ "$rc" != 0 ] || [ "$#" != 0 ]; then  # a selection of tests (./test.sh -k …) is not the sanitizer run's
    exit "$rc"
fi
echo ">> the C extension under ASan and UBSan"
scripts/sanitized.sh "$VENV/bin/python" tests/unit/test_flowmeter.py tests/unit/test_meter_reader.py \
    tests/system/test_meter_oracles.py tests/unit/test_pcapgen.py tests/system/test_oracles.py tests/unit/test_pcapfile.py \
    tests/system/test_pcap_read_by_tcpdump.py tests/unit/test_packetcsv.py tests/unit/test_meter_corpus.py \
    tests/unit/test_pcapng.py tests/unit/test_flows_cli.py tests/unit/test_meter_fuzz.py tests/system/test_capture_formats.py
