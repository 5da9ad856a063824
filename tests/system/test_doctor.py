"""`opentap doctor` on a healthy device, and with tcpdump missing (hidden in a mount namespace of its own) and
a configured interface missing: each failure named with its fix, and the exit status says so."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from opentap import config, tlscert
from opentap.db.session import open_database

from ..support.configs import write_config

pytestmark = pytest.mark.root


def doctor(conf: Path, hide_tcpdump: bool = False, drop: str | None = None) -> tuple[int, dict[str, list[dict]]]:
    argv = [sys.executable, "-m", "opentap", "doctor", "--config", str(conf), "-f", "json"]
    if drop:  # a capability taken from the command's bounding set, so from what it has (as systemd would)
        argv = ["setpriv", f"--inh-caps=-{drop}", f"--bounding-set=-{drop}", "--", *argv]
    if hide_tcpdump:  # /dev/null over every tcpdump there is: found nowhere, for this command only
        hide = "for p in /usr/bin/tcpdump /usr/sbin/tcpdump; do [ -e $p ] && mount --bind /dev/null $p; done; "
        argv = ["unshare", "--mount", "--propagation", "private", "sh", "-c", hide + 'exec "$@"', "sh", *argv]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    by_check: dict[str, list[dict]] = {}
    for c in json.loads(out.stdout):
        by_check.setdefault(c["check"], []).append(c)
    return out.returncode, by_check


def healthy(tmp_path: Path, points: dict[str, str]) -> Path:
    fingerprint = tlscert.generate(tmp_path / "tls.crt", tmp_path / "tls.key", ["localhost"], ["127.0.0.1"])
    assert fingerprint
    conf = write_config(tmp_path, points, tls_cert="tls.crt", tls_key="tls.key")
    engine, _ = open_database(config.load(conf).database_url)  # made and migrated, as after a first start
    engine.dispose()
    return conf


def test_a_healthy_device(tmp_path: Path, lan) -> None:
    rc, checks = doctor(healthy(tmp_path, {"a": lan.ha, "b": lan.hb}))
    statuses = {name: [c["status"] for c in cs] for name, cs in checks.items()}
    assert rc == 0, checks
    for name in ("config", "tcpdump", "capabilities", "kernel tc", "interfaces", "database", "disk", "TLS"):
        assert statuses[name] == ["ok"], checks[name]
    assert statuses["clock"] in (["ok"], ["warn"])  # a test machine's clock may not be synchronised
    assert "captured a packet on lo" in checks["tcpdump"][0]["detail"]


def test_tcpdump_missing_and_an_interface_missing(tmp_path: Path, lan) -> None:
    rc, checks = doctor(healthy(tmp_path, {"a": lan.ha, "gone": "ot-gone0"}), hide_tcpdump=True)
    assert rc == 1
    assert checks["tcpdump"] == [{"check": "tcpdump", "status": "FAIL", "detail": "tcpdump is not installed",
                                  "fix": "apt-get install tcpdump"}]
    [iface] = checks["interfaces"]
    assert iface["status"] == "FAIL" and "gone (ot-gone0)" in iface["detail"] and "a (" not in iface["detail"]
    assert "[observation_points]" in iface["fix"]
    assert checks["database"][0]["status"] == "ok"  # the rest still checked


def test_without_the_priority_capability_a_warning(tmp_path: Path, lan) -> None:
    """CAP_SYS_NICE is wanted, not needed: a warning that says what it costs, and the exit status stays 0."""
    rc, checks = doctor(healthy(tmp_path, {"a": lan.ha}), drop="sys_nice")
    [caps] = checks["capabilities"]
    assert rc == 0 and caps["status"] == "warn", caps
    assert "lacks CAP_SYS_NICE" in caps["detail"] and "packet rings" in caps["detail"]
    assert "CAP_SYS_NICE" in caps["fix"]
    (tmp_path / "b").mkdir()
    rc, checks = doctor(healthy(tmp_path / "b", {"a": lan.ha}), drop="net_admin")
    [caps] = checks["capabilities"]
    assert rc == 1 and caps["status"] == "FAIL" and "lacks CAP_NET_ADMIN" in caps["detail"], caps
