"""`opentap doctor`: whether this host has what the device needs, each failure with how to fix it.

Checks are real where that is cheap: tcpdump captures a packet on lo (as capture_user, when set), the kernel's
tc pieces are tried in a network namespace of their own (nothing on the host is touched), the database's
schema is compared with this version's newest. A failure makes the exit status 1; a warning does not."""

from __future__ import annotations

import argparse
import ctypes
import datetime
import json
import os
import secrets
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from opentap import config, hostif
from opentap.config import Config

OK, WARN, FAIL = "ok", "warn", "FAIL"
CAPS = {"CAP_CHOWN": 0, "CAP_DAC_OVERRIDE": 1, "CAP_FOWNER": 3, "CAP_KILL": 5, "CAP_SETGID": 6, "CAP_SETUID": 7,
        "CAP_NET_ADMIN": 12, "CAP_NET_RAW": 13, "CAP_SYS_NICE": 23}
# Wanted, not needed: without it a ring's recorder records at the normal priority (a loaded host then drops
# more), a ring's copies cannot be lowered below the recorder, and the sensor samplers get no real-time class.
PRIORITY_CAP = "CAP_SYS_NICE"


@dataclass
class Check:
    check: str
    status: str
    detail: str
    fix: str = ""


def _tcpdump() -> str | None:
    return shutil.which("tcpdump") or shutil.which("tcpdump", path="/usr/sbin:/usr/bin")


def check_tcpdump(cfg: Config) -> list[Check]:
    path = _tcpdump()
    if path is None:
        return [Check("tcpdump", FAIL, "tcpdump is not installed", "apt-get install tcpdump")]
    port = 40000 + secrets.randbelow(20000)
    argv = [path, "-i", "lo", "-n", "-c", "1", "-Z", cfg.capture_user or "root", "-w", "/dev/null",
            f"udp port {port}"]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    os.set_blocking(proc.stderr.fileno(), False)
    seen, deadline = b"", time.monotonic() + 5
    try:
        while b"listening on" not in seen and proc.poll() is None and time.monotonic() < deadline:
            seen += proc.stderr.read() or b""
            time.sleep(0.02)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for _ in range(3):
                s.sendto(b"opentap doctor", ("127.0.0.1", port))
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    seen += proc.stderr.read() or b""
    text = seen.decode(errors="replace")
    who = f" as {cfg.capture_user}" if cfg.capture_user else ""
    if proc.returncode == 0:
        return [Check("tcpdump", OK, f"{path} captured a packet on lo{who}")]
    why = "; ".join(ln for ln in text.splitlines() if ln and "listening on" not in ln)[-300:]
    return [Check("tcpdump", FAIL, f"{path} could not capture on lo{who}: {why or 'no packet seen'}",
                  "run as root (the daemon needs CAP_NET_RAW)" + (f"; check that user {cfg.capture_user} exists"
                                                                  if cfg.capture_user else ""))]


def _caps_of(pid: int | str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("CapEff:"):
                return int(line.split()[1], 16)
    except OSError:
        pass
    return None


def _daemon_pid(cfg: Config) -> int | None:
    try:
        pid = int((cfg.data_dir / "lock").read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if Path(f"/proc/{pid}").exists() else None


def check_capabilities(cfg: Config) -> list[Check]:
    needed = ["CAP_NET_ADMIN", "CAP_NET_RAW"]
    if cfg.capture_user:
        needed += ["CAP_SETUID", "CAP_SETGID", "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_KILL"]
    pid = _daemon_pid(cfg)
    whose = f"the running daemon (pid {pid})" if pid else "this command (the daemon is not running)"
    caps = _caps_of(pid or "self") or 0
    missing = [c for c in needed if not caps >> CAPS[c] & 1]
    if missing:
        return [Check("capabilities", FAIL, f"{whose} lacks {', '.join(missing)}",
                      "run the daemon as root; with systemd, keep these in CapabilityBoundingSet "
                      "(opentap.service)")]
    if not caps >> CAPS[PRIORITY_CAP] & 1:
        return [Check("capabilities", WARN, f"{whose} has {', '.join(needed)} but lacks {PRIORITY_CAP}: captures "
                      "work, but packet rings record at the normal priority (a busy host drops more) and sensors "
                      "are sampled without a real-time class",
                      f"with systemd, keep {PRIORITY_CAP} in CapabilityBoundingSet (opentap.service)")]
    return [Check("capabilities", OK, f"{whose} has {', '.join(needed)} and {PRIORITY_CAP}")]


TC_PIECES = {  # what to try, in a network namespace of its own, for each piece the datapath uses
    "clsact": "tc qdisc add dev lo clsact",
    "u32": "tc filter add dev lo ingress prio 1 protocol all u32 match u32 0 0",
    "bpf": "tc filter add dev lo ingress prio 2 protocol all bpf bytecode '1,6 0 0 262144' classid 1:1",
    "mirred": "tc filter add dev lo ingress prio 3 protocol all u32 match u32 0 0 action mirred egress mirror dev lo",
}


def check_tc() -> list[Check]:
    if not shutil.which("tc") or not shutil.which("unshare"):
        return [Check("kernel tc", FAIL, "tc or unshare is missing", "apt-get install iproute2 util-linux")]
    script = "ip link set lo up && " + " && ".join(
        f"{{ {cmd} >/dev/null 2>&1 && echo {name}; }} ; true" for name, cmd in TC_PIECES.items())
    out = subprocess.run(["unshare", "--net", "sh", "-c", script], capture_output=True, text=True, timeout=20)
    have = set(out.stdout.split())
    missing = [p for p in TC_PIECES if p not in have]
    if out.returncode != 0 and not have:
        return [Check("kernel tc", FAIL, f"could not try tc in a network namespace: {out.stderr.strip()[:200]}",
                      "run opentap doctor as root")]
    if missing:
        modules = {"clsact": "sch_ingress", "u32": "cls_u32", "bpf": "cls_bpf", "mirred": "act_mirred"}
        return [Check("kernel tc", FAIL, f"the kernel refused {', '.join(missing)}: tap flows cannot be mirrored",
                      "load the modules: modprobe " + " ".join(modules[m] for m in missing))]
    return [Check("kernel tc", OK, "clsact, u32, bpf and mirred work")]


def check_interfaces(cfg: Config) -> list[Check]:
    if not cfg.observation_points:
        return [Check("interfaces", WARN, "no observation points are configured",
                      "name interfaces under [observation_points] in the config")]
    present = hostif.present()
    gone = [f"{p.name} ({p.interface})" for p in cfg.observation_points.values() if p.interface not in present]
    down = [f"{p.name} ({p.interface})" for p in cfg.observation_points.values()
            if p.interface in present and not hostif.is_up(p.interface)]
    out = []
    if gone:
        out.append(Check("interfaces", FAIL, f"missing: {', '.join(gone)}",
                         "plug in or create the interface, or change [observation_points] in the config"))
    if down:
        out.append(Check("interfaces", WARN, f"down: {', '.join(down)}", "ip link set IFACE up"))
    if not out:
        out.append(Check("interfaces", OK, f"{len(cfg.observation_points)} observation points, all present and up"))
    return out


def check_database(cfg: Config) -> list[Check]:
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    from opentap.db.session import head_revision, make_engine

    shown = make_url(cfg.database_url).render_as_string(hide_password=True)
    head = head_revision()
    sqlite = make_url(cfg.database_url).database if cfg.database_url.startswith("sqlite") else None
    if sqlite and not Path(sqlite).exists():
        return [Check("database", WARN, f"{shown} does not exist yet", "it is made at the daemon's first start "
                                                                       "(or by opentap migrate)")]
    engine = make_engine(cfg.database_url)
    try:
        with engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
    except SQLAlchemyError as e:
        cause = str(getattr(e, "orig", None) or e).splitlines()[0]
        return [Check("database", FAIL, f"{shown} cannot be reached: {cause}",
                      "check database_url, the server and its credentials")]
    finally:
        engine.dispose()
    if current != head:
        return [Check("database", FAIL, f"{shown} is at schema {current}, this version needs {head}",
                      "opentap migrate (the daemon also migrates at start)")]
    return [Check("database", OK, f"{shown} reachable, schema {head}")]


def check_disk(cfg: Config) -> list[Check]:
    from opentap.capture.storage import tree_size

    where = cfg.data_dir
    while not where.exists():
        where = where.parent
    free = shutil.disk_usage(where).free
    used = tree_size(cfg.data_dir) if cfg.data_dir.exists() else 0
    room, quota = free + used, cfg.disk_quota_bytes
    detail = f"quota {quota / 2**20:.0f} MB, {used / 2**20:.0f} MB used, {free / 2**20:.0f} MB free on {where}"
    if room < quota:
        return [Check("disk", FAIL, detail + ": the disk fills before the quota is reached",
                      "lower disk_quota_mb or free space on the data directory's disk")]
    return [Check("disk", OK, detail)]


def _clock_state() -> int:
    """adjtimex(2) with no change: 5 (TIME_ERROR) while the kernel's clock is not synchronised."""
    buf = ctypes.create_string_buffer(512)  # struct timex, zeroed: modes = 0 reads only
    return ctypes.CDLL(None, use_errno=True).adjtimex(buf)


def check_clock() -> list[Check]:
    try:
        state = _clock_state()
    except (OSError, AttributeError):
        return [Check("clock", WARN, "could not ask the kernel whether the clock is synchronised")]
    if state == 5:
        return [Check("clock", WARN, "the clock is not synchronised: capture windows and packet times may be off",
                      "apt-get install chrony (or enable systemd-timesyncd)")]
    return [Check("clock", OK, "synchronised")]


def check_tls(cfg: Config) -> list[Check]:
    if not cfg.tls:
        return [Check("TLS", OK if config.is_loopback(cfg.listen_host) else FAIL, "no certificate: plain HTTP on "
                      f"{cfg.listen_host}")]
    from cryptography import x509

    from opentap.tlscert import fingerprint_file

    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(str(cfg.tls_cert), str(cfg.tls_key))
        cert = x509.load_pem_x509_certificate(Path(cfg.tls_cert).read_bytes())
    except (OSError, ssl.SSLError, ValueError) as e:
        return [Check("TLS", FAIL, f"{cfg.tls_cert} and {cfg.tls_key} do not make a certificate and its key: {e}",
                      "opentap config init makes a self-signed pair; or give tls_cert and tls_key that match")]
    left = cert.not_valid_after_utc - datetime.datetime.now(datetime.UTC)
    detail = f"{cfg.tls_cert}, sha256:{fingerprint_file(Path(cfg.tls_cert))}, {left.days} days left"
    if left.total_seconds() <= 0:
        return [Check("TLS", FAIL, f"{cfg.tls_cert} expired", "make a new certificate (clients must pin it again)")]
    if left.days < 30:
        return [Check("TLS", WARN, detail, "make a new certificate before it expires")]
    return [Check("TLS", OK, detail)]


def run_checks(cfg: Config) -> list[Check]:
    steps: list[tuple[str, Callable[[], list[Check]]]] = [
        ("tcpdump", lambda: check_tcpdump(cfg)), ("capabilities", lambda: check_capabilities(cfg)),
        ("kernel tc", check_tc), ("interfaces", lambda: check_interfaces(cfg)),
        ("database", lambda: check_database(cfg)), ("disk", lambda: check_disk(cfg)), ("clock", check_clock),
        ("TLS", lambda: check_tls(cfg))]
    out: list[Check] = []
    for name, step in steps:
        try:
            out += step()
        except Exception as e:  # a check that breaks is a finding, not a crash of the doctor
            out.append(Check(name, FAIL, f"the check itself failed: {e}"))
    return out


def run(args: argparse.Namespace) -> int:
    try:
        cfg = config.load(args.config)
    except ValueError as e:
        checks = [Check("config", FAIL, str(e), "fix the config (README: Configuration)")]
    else:
        checks = [Check("config", OK, f"{cfg.path} loads"), *run_checks(cfg)]
    if args.format == "json":
        print(json.dumps([asdict(c) for c in checks], indent=2))
    else:
        width = max(len(c.check) for c in checks)
        for c in checks:
            print(f"{c.status:<5} {c.check:<{width}}  {c.detail}")
            if c.fix and c.status != OK:
                print(f"{'':<5} {'':<{width}}  fix: {c.fix}")
    return 1 if any(c.status == FAIL for c in checks) else 0
