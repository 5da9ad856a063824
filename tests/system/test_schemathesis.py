"""Finding 10: the OpenAPI document describes the API as it behaves (its shape: tests/unit/test_openapi.py).
schemathesis, run as its own CLI with every check against a real daemon, with an admin's and a member's token,
must report nothing.

Why the CLI against a real process rather than the ASGI app: the requests then cross a real HTTP server
(uvicorn's percent-decoding, header parsing, streamed responses, the router's 405s), as a client's do, and the
CLI runs every phase — the coverage phase (boundary values, missing parameters, undeclared methods, no
X-Auth-Token) and the stateful phase — where the pytest plugin runs the per-operation ones only."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..support.daemon import Daemon, running

MAX_EXAMPLES = 4  # per operation and token in the fuzzing phase; coverage adds its deterministic cases
SEED = 20240611  # fixed: CI runs the same cases every time (change it to explore)
# Operations whose inputs have rules no JSON Schema can state (a window in the future and within the limit, a
# point the caller may use, a filter that compiles; a project_id that must be the caller's and agree with
# tenant_id; a VLAN range's first id at most its last; sort_dir paired with sort_key; check_limit against the
# usage; a format the capture's type has): their documents say so, and for them alone a schema-valid request may
# be a 400 (still a documented status, with a schema-valid error body).
SEMANTIC_400 = [("GET", "/capture/{capture_type}"), ("POST", "/captures"), ("GET", "/retrieve"),
                ("PUT", "/v2.0/quotas/{project_id}"),
                # a capture that is not a netflow capture, or has not started (the web interface's flow tables)
                ("GET", "/captures/{capture_id}/flows"), ("GET", "/captures/{capture_id}/flows/summary")]
SEMANTIC_400 += [(m, p) for p in ("/v2.0/ports", "/v2.0/taas/tap_services", "/v2.0/taas/tap_flows")
                 for m in ("GET", "POST")]


def _wrapper() -> list[str]:
    """As root the daemon would change tc rules for the ports schemathesis makes up; without CAP_NET_ADMIN it
    stores them and mirrors nothing (the datapath is not what this test is about)."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("as root this test needs setpriv (util-linux) to run the daemon without CAP_NET_ADMIN")
    return [setpriv, "--bounding-set=-net_admin", "--"]


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    pytest.importorskip("schemathesis", reason="schemathesis is not installed (pip install -e '.[test]')")
    # a sensor point too, so that /capabilities lists one and sensor captures are fuzzed
    with running(tmp_path_factory.mktemp("schemathesis"), wrapper=_wrapper(),
                 extra_toml='[sensors.demo]\ndriver = "simulated"\nkind = "motion"') as d:
        yield d


def _config(path: Path, token: str) -> Path:
    path.write_text("\n".join([
        "[auth.openapi.token]", f'api_key = "{token}"',
        "[generation]", f"max-examples = {MAX_EXAMPLES}",
        *[line for method, op_path in SEMANTIC_400 for line in (
            "[[operations]]", f'include-path = "{op_path}"', f'include-method = "{method}"',
            'checks.positive_data_acceptance.expected-statuses = ["2xx", "3xx", "400", "401", "403", "404", "409",'
            ' "429"]')],
        # A quota is never gone: DELETE /v2.0/quotas/{p} resets it to the defaults, which a GET then shows, as
        # Neutron's does; use_after_free would read that as a deleted resource still being served.
        "[[operations]]", 'include-path-regex = "^/v2.0/quotas/"', "checks.use_after_free.enabled = false", ""]))
    return path


def test_schemathesis_reports_nothing(daemon: Daemon, tmp_path: Path) -> None:
    """An admin's run and a member's, at the same time (each waits on the daemon as much as it works)."""
    runs = {}
    for token in ("tok-admin", "tok-alice"):
        work = tmp_path / token
        work.mkdir()
        argv = [sys.executable, "-m", "schemathesis.cli", "--config-file", str(_config(work / "st.toml", token)),
                "run", daemon.url + "/openapi.json", "--checks", "all", "--seed", str(SEED), "--workers", "1"]
        runs[token] = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=work,
                                       env={**os.environ, "NO_COLOR": "1"})
    started = time.monotonic()
    for token, proc in runs.items():
        stdout, stderr = proc.communicate(timeout=240)
        summary = stdout[stdout.rfind("SUMMARY"):]
        assert proc.returncode == 0, f"{token}:\n" + stdout[-12000:] + stderr[-2000:]
        assert "Failures" not in summary and " passed" in summary, f"{token}: {summary}"
        print(f"schemathesis ({token}): {time.monotonic() - started:.1f} s; "
              f"{summary.split('Test cases:')[-1].strip().splitlines()[0]}")
