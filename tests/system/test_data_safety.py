"""From the side of faults and of other local users: captured data is private, one daemon owns a data
directory, and a capture's state says what is really on disk (full or read-only disks, files removed or
damaged behind the device's back, a sampler that fell behind)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import stat
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from opentap.pcap import pcapfile

from ..support.apicalls import headers
from ..support.daemon import Daemon, free_port, running
from ..support.netns import B_IP, counters

pytestmark = pytest.mark.root


@contextlib.contextmanager
def mounted(path: Path, *options: str) -> Iterator[None]:
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", *options, str(path)], check=True)
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def capture(d: Daemon, kind: str, point: str, seconds: float, **extra: object) -> dict:
    now = time.time()
    r = d.get(f"/capture/{kind}", start=now, stop=now + seconds, observationpt=point, **extra)
    assert r.status_code == 200, r.text
    return r.json()


def final(d: Daemon, cid: str, timeout: float = 40) -> dict:
    return d.wait(cid, ("complete", "truncated", "failed", "cancelled"), timeout)


def retrieve(d: Daemon, cid: str, **params: object) -> httpx.Response:
    return httpx.get(d.url + "/retrieve", params={"id": cid, **params}, headers=headers(), timeout=60)


def modes(root: Path) -> dict[str, int]:
    out = {}
    for top, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(top, name)
            out[str(path.relative_to(root))] = stat.S_IMODE(path.lstat().st_mode)
    return out


def test_captured_data_and_the_database_are_private(tmp_path: Path, lan) -> None:
    old = tmp_path / "data" / "projects" / "admin" / "from-an-old-version"
    old.mkdir(parents=True)
    (old / "notes.txt").write_text("left 0644 by an older version")
    for path in (tmp_path / "data", tmp_path / "data" / "projects", old.parent, old):
        path.chmod(0o755)
    (old / "notes.txt").chmod(0o644)
    with running(tmp_path, {"a": lan.ha}) as d:
        cid = capture(d, "ethernet", "a", 2)["id"]
        d.wait(cid, ("running",))
        lan.run(lan.ns_a, "udp", B_IP, 5000, 20, 100)
        assert final(d, cid)["state"] == "complete"
        found = modes(tmp_path / "data")
        pcap = next((tmp_path / "data" / "projects" / "admin" / cid).glob("packets-*.pcap"))
        denied = subprocess.run(["runuser", "-u", "nobody", "--", "cat", str(pcap)], capture_output=True)
    assert denied.returncode != 0 and b"Permission denied" in denied.stderr
    assert found and {m for name, m in found.items() if (tmp_path / "data" / name).is_dir()} == {0o700}
    assert {m for name, m in found.items() if not (tmp_path / "data" / name).is_dir()} == {0o600}, found
    assert f"projects/admin/{cid}/manifest.json" in found and f"projects/admin/{cid}/tcpdump-001.log" in found
    for db in tmp_path.glob("opentap.db*"):
        assert stat.S_IMODE(db.stat().st_mode) == 0o600, db


@pytest.fixture
def system_user() -> Iterator[str]:
    name = f"otcap{os.getpid() % 100000}"
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name], check=True)
    subprocess.run(["groupadd", "--system", f"{name}g"], check=True)
    try:
        yield name
    finally:
        subprocess.run(["userdel", name], check=False)
        subprocess.run(["groupdel", f"{name}g"], check=False)


def test_a_capture_user_owns_the_files_and_a_data_group_may_read_them(tmp_path: Path, lan, system_user: str) -> None:
    import grp
    import pwd

    # the capture user must reach the data directory: pytest's own temporary directories are root's alone
    top = Path(tempfile.mkdtemp(prefix="opentap-test-", dir="/tmp"))
    top.chmod(0o711)
    try:
        with running(tmp_path, {"a": lan.ha}, capture_user=system_user, data_group=f"{system_user}g",
                     data_dir=str(top / "data")) as d:
            cid = capture(d, "ethernet", "a", 2)["id"]
            d.wait(cid, ("running",))
            lan.run(lan.ns_a, "udp", B_IP, 5000, 20, 100)
            assert final(d, cid)["state"] == "complete"
        _check_owners(top / "data", cid, pwd.getpwnam(system_user).pw_uid, grp.getgrnam(f"{system_user}g").gr_gid)
    finally:
        shutil.rmtree(top)


def _check_owners(data: Path, cid: str, uid: int, gid: int) -> None:
    directory = data / "projects" / "admin" / cid
    pcap = next(directory.glob("packets-*.pcap"))
    assert pcap.stat().st_uid == uid  # tcpdump ran as the capture user, not as root
    assert (stat.S_IMODE(pcap.stat().st_mode), stat.S_IMODE(directory.stat().st_mode)) == (0o640, 0o750)
    assert directory.stat().st_gid == gid and data.stat().st_gid == gid


def test_a_second_daemon_exits_at_once_and_changes_nothing(tmp_path: Path, lan) -> None:
    with running(tmp_path, {"a": lan.ha}) as first:
        cid = capture(first, "ethernet", "a", 6)["id"]
        first.wait(cid, ("running",))
        before = counters(lan.ha)
        stream = lan.spawn(lan.ns_a, "udp", B_IP, 5000, 600, 100, 200)  # 3 s of datagrams, during which:
        time.sleep(0.5)
        started = time.monotonic()
        second = subprocess.run([sys.executable, "-m", "opentap", "serve", "--config", str(first.conf), "--listen",
                                 f"127.0.0.1:{free_port()}"], capture_output=True, text=True, timeout=30)
        took = time.monotonic() - started
        stream.communicate(timeout=30)
        cap = final(first, cid)
        after = counters(lan.ha)
    assert second.returncode == 1 and took < 10
    assert second.stderr.strip().splitlines() == [
        f"opentap: another OpenTap daemon (pid {first.proc.pid}) is using {tmp_path / 'data'}; not starting"]
    assert cap["state"] == "complete" and cap["reason"] == ""
    assert cap["packets"] == sum(after[k] - before[k] for k in ("rx_packets", "tx_packets")) >= 600


def test_a_full_data_disk_truncates_the_capture_and_the_daemon_carries_on(tmp_path: Path, lan) -> None:
    with mounted(tmp_path / "data", "-t", "tmpfs", "-o", "size=3m", "tmpfs"), \
            running(tmp_path, {"a": lan.ha}, chunk_mb=1) as d:
        cid = capture(d, "ethernet", "a", 6)["id"]
        d.wait(cid, ("running",))
        server = lan.spawn(lan.ns_b, "tcpserve", 6000, 10)
        lan.run(lan.ns_a, "tcp", B_IP, 6000, 8_000_000)  # far more than the disk holds
        server.communicate(timeout=30)
        cap = final(d, cid)
        assert cap["state"] == "truncated" and "disk full at" in cap["reason"], cap
        assert httpx.get(d.url + "/healthz", timeout=5).json()["status"] == "ok"
        r = retrieve(d, cid)
        assert r.status_code == 200 and r.headers["x-opentap-state"] == "truncated"
        # what the capture says it holds is what is there
        chunks = sorted((tmp_path / "data" / "projects" / "admin" / cid).glob("packets-*.pcap"))
        assert cap["packets"] == pcapfile.count(chunks).packets > 0
        later = capture(d, "linkstats", "a", 1)["id"]  # the engine still runs captures
        assert final(d, later)["state"] in ("complete", "truncated", "failed")


def test_a_read_only_data_directory_fails_the_capture_with_its_reason(tmp_path: Path, lan) -> None:
    with running(tmp_path, {"a": lan.ha}) as d:
        cid = capture(d, "ethernet", "a", 3)["id"]
        d.wait(cid, ("running",))
        lan.run(lan.ns_a, "udp", B_IP, 5000, 20, 100)
        data = tmp_path / "data"
        with mounted(data, "--bind", str(data)):
            subprocess.run(["mount", "-o", "remount,bind,ro", str(data)], check=True)
            cap = final(d, cid)
            assert httpx.get(d.url + "/healthz", timeout=5).json()["status"] == "ok"
    assert cap["state"] == "failed" and "Read-only file system" in cap["reason"], cap


def test_a_capture_whose_directory_is_removed_fails(tmp_path: Path, lan) -> None:
    with running(tmp_path, {"a": lan.ha}) as d:
        cid = capture(d, "ethernet", "a", 3)["id"]
        d.wait(cid, ("running",))
        lan.run(lan.ns_a, "udp", B_IP, 5000, 20, 100)
        subprocess.run(["rm", "-rf", "--", str(tmp_path / "data" / "projects" / "admin" / cid)], check=True)
        cap = final(d, cid)
        r = retrieve(d, cid)
    assert cap["state"] == "failed" and "removed" in cap["reason"] and cap["packets"] == 0, cap
    assert r.status_code == 410 and "gone" in r.json()["msg"]


def test_deleted_data_is_an_error_and_the_capture_says_so(tmp_path: Path, lan) -> None:
    with running(tmp_path, {"a": lan.ha}) as d:
        cid = capture(d, "ethernet", "a", 2)["id"]
        d.wait(cid, ("running",))
        lan.run(lan.ns_a, "udp", B_IP, 5000, 20, 100)
        assert final(d, cid)["state"] == "complete"
        for pcap in (tmp_path / "data" / "projects" / "admin" / cid).glob("packets-*.pcap"):
            pcap.unlink()
        for fmt in ("pcap", "csv"):
            r = retrieve(d, cid, format=fmt)
            assert r.status_code == 410 and "packets-001-000000.pcap" in r.json()["msg"], r.text
        cap = d.capture(cid)
    assert cap["state"] == "truncated" and "removed or cut after it finished" in cap["reason"]


def _damage_record(path: Path, index: int) -> int:
    """Make record `index` of a pcap claim an impossible length; return its offset."""
    data = bytearray(path.read_bytes())
    pos = pcapfile.HEADER_LEN
    for _ in range(index):
        pos += 16 + struct.unpack_from("<I", data, pos + 8)[0]
    struct.pack_into("<I", data, pos + 8, 0x7FFFFFFF)
    path.write_bytes(bytes(data))
    return pos


def test_a_damaged_record_ends_the_data_at_the_last_good_one(tmp_path: Path, lan) -> None:
    with running(tmp_path, {"a": lan.ha}, chunk_mb=1) as d:
        cid = capture(d, "ethernet", "a", 4)["id"]
        d.wait(cid, ("running",))
        server = lan.spawn(lan.ns_b, "tcpserve", 6000, 10)
        lan.run(lan.ns_a, "tcp", B_IP, 6000, 3_000_000)
        server.communicate(timeout=30)
        cap = final(d, cid)
        assert cap["state"] == "complete"
        chunks = sorted((tmp_path / "data" / "projects" / "admin" / cid).glob("packets-*.pcap"))
        assert len(chunks) >= 2
        in_first = pcapfile.count(chunks[:1]).packets
        offset = _damage_record(chunks[0], 3)
        r = retrieve(d, cid)
        csv = retrieve(d, cid, format="csv")
        after = d.capture(cid)
    assert r.status_code == 200 and r.headers["x-opentap-state"] == "truncated"
    out = tmp_path / "got.pcap"
    out.write_bytes(r.content)
    read = subprocess.run(["tcpdump", "-n", "-r", str(out)], capture_output=True, text=True)
    assert read.returncode == 0, read.stderr  # a valid pcap: the damaged chunk ends before the damage
    assert len(read.stdout.splitlines()) == cap["packets"] - (in_first - 3)
    assert csv.status_code == 200 and len(csv.text.splitlines()) == 1 + cap["packets"] - (in_first - 3)
    assert after["state"] == "truncated" and f"damaged at byte {offset}" in after["reason"]


def test_missed_linkstats_samples_are_counted_and_reported(tmp_path: Path, lan) -> None:
    with running(tmp_path, {"a": lan.ha}) as d:
        cid = capture(d, "linkstats", "a", 3, period=10)["id"]
        d.wait(cid, ("running",))
        time.sleep(1)
        os.kill(d.proc.pid, signal.SIGSTOP)  # a stalled machine, as far as the sampler can tell
        time.sleep(0.6)
        os.kill(d.proc.pid, signal.SIGCONT)
        cap = final(d, cid)
    stats = cap["stats"]
    assert cap["state"] == "truncated" and "samples were missed" in cap["reason"], cap
    assert stats["missed_samples"] >= 40 and stats["samples"] == cap["packets"]
    assert 250 <= stats["samples"] + stats["missed_samples"] <= 330  # 3 s at 10 ms, give or take a start-up
