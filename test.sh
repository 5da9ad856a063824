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
# pytest's exit 5 (it collected nothing) is a failure, not a pass
pytest_run() {
    set +e
    "$VENV/bin/python" -m pytest "$@"
    local rc=$?
    set -e
    if [ "$rc" = 5 ]; then
        echo "!! pytest collected no tests: that is a failure, not a pass" >&2
        return 1
    fi
    return "$rc"
}
if [ "$#" != 0 ]; then  # a selection of tests (./test.sh -k …): as asked, and not the sanitizer run's
    echo ">> pytest $*"
    pytest_run -ra --durations=40 "$@"
    exit $?
fi
# The unit tier on both cores (it shares nothing: no root, no network, no daemon; half the time), then the
# system tier on two workers too, a file at a time each (a file's module fixtures stay on one worker). Its tests
# are written to share the host with other runs, as engineers' runs on one machine always did: namespaces and
# links are named by the process id, ports are free ones, a daemon touches only rules with its own cookie, and
# captures on lo or `any` look only at their own ports. Most of its time is waiting (capture windows, daemons
# starting), so two workers take 7.5 minutes where one took 13.
echo ">> pytest tests/unit (two workers)"
pytest_run -ra -n 2 tests/unit || exit $?
echo ">> pytest tests/system (two workers, by file)"
pytest_run -ra -n 2 --dist loadfile --durations=40 tests/system || exit $?
echo ">> the C extension under ASan and UBSan"
scripts/sanitized.sh "$VENV/bin/python" tests/unit/test_flowmeter.py tests/unit/test_meter_reader.py \
    tests/system/test_meter_oracles.py tests/unit/test_pcapgen.py tests/system/test_oracles.py tests/unit/test_pcapfile.py \
    tests/system/test_pcap_read_by_tcpdump.py tests/unit/test_packetcsv.py tests/unit/test_meter_corpus.py \
    tests/unit/test_pcapng.py tests/unit/test_flows_cli.py tests/unit/test_meter_fuzz.py tests/system/test_capture_formats.py
