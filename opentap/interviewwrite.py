"""Writing what the interview (opentap/interview.py) decided: the TLS pair, the admin token and the config,
with Ctrl-C held off while the files are written; then the summary the administrator reads."""

from __future__ import annotations

import ipaddress
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from opentap import auth, configwrite, tlscert
from opentap.config import load, parse_listen
from opentap.configwrite import ADMIN_TOKEN_FILE, TLS_CERT_FILE, TLS_KEY_FILE, toml_str
from opentap.interview import Plan


@dataclass(frozen=True)
class Result:
    path: Path
    token: str
    fingerprint: str | None  # the certificate's SHA-256 (None without TLS)
    url: str


@contextmanager
def _no_interrupt() -> Iterator[None]:
    """Ctrl-C waits until the files are written: a half-written set (a token without its config) is worse."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _url_host(plan: Plan) -> str:
    host = parse_listen(Path("listen"), "listen", plan.listen)[0]
    if host in ("0.0.0.0", "::"):  # every interface: the first routable address a client could use, IPv4 first
        usable = [ipaddress.ip_address(a) for a in plan.addresses]
        usable = sorted((ip for ip in usable if not ip.is_loopback and not ip.is_link_local), key=lambda ip: ip.version)
        if usable:
            return f"[{usable[0]}]" if usable[0].version == 6 else str(usable[0])
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def url(plan: Plan) -> str:
    port = parse_listen(Path("listen"), "listen", plan.listen)[1]
    return f"{'http' if plan.tls == 'none' else 'https'}://{_url_host(plan)}:{port}"


def render(plan: Plan, token_digest: str, tls_files: tuple[str, str] | None) -> str:
    lines = [
        "# OpenTap device configuration, written by the installer's interview (`opentap config init",
        "# --interactive`). README.md's Configuration section describes every key. Times are seconds unless",
        "# a key says otherwise.",
        f"device_name = {toml_str(plan.device_name)}",
        f"listen = {toml_str(plan.listen)}",
    ]
    if tls_files:
        lines += [f"tls_cert = {toml_str(tls_files[0])}", f"tls_key = {toml_str(tls_files[1])}"]
    lines += [f"{key} = {toml_str(value)}" for key, value in plan.fixed.items()]
    lines += [
        f"retention_minutes = {plan.retention_minutes}",
        f"capture_length_limit = {plan.capture_length_limit}",
        f"max_concurrent_captures = {plan.max_concurrent_captures}",
        f"disk_quota_mb = {plan.disk_quota_mb}",
        'auth = "token"',
    ]
    if plan.default_point:
        lines.append(f"default_observation_point = {toml_str(plan.default_point)}")
    lines += ["", "[observation_points]  # name = interface, or {interface = ..., projects = [...], admin_only = true}"]
    lines += [configwrite.point_line(name, i.name, i.name in configwrite.ADMIN_ONLY_INTERFACES)
              for name, i in plan.points.items()]
    lines += ["", *configwrite.token_block(token_digest, "admin", ["admin"])]
    return "\n".join(lines) + "\n"


def write(plan: Plan, path: Path) -> Result:
    """The TLS pair (when generated), the admin token (0600) and the config, last: a config on disk means the
    set-up finished. Returns what the summary shows."""
    directory = path.resolve().parent
    directory.mkdir(parents=True, exist_ok=True)
    token = auth.new_token()
    with _no_interrupt():
        fingerprint = None
        tls_files = None
        if plan.tls == "generate":
            cert, key = directory / TLS_CERT_FILE, directory / TLS_KEY_FILE
            addresses = sorted({*plan.addresses, "127.0.0.1"})
            host = parse_listen(Path("listen"), "listen", plan.listen)[0]
            if host not in ("0.0.0.0", "::"):
                addresses = [host]
            fingerprint = tlscert.generate(cert, key, [plan.device_name, *tlscert.host_names()], addresses)
            tls_files = (str(cert), str(key))
        elif plan.tls == "files" and plan.tls_cert and plan.tls_key:
            fingerprint = tlscert.fingerprint_file(Path(plan.tls_cert))
            tls_files = (plan.tls_cert, plan.tls_key)
        configwrite.write_private(directory / ADMIN_TOKEN_FILE, token + "\n", 0o600)
        tmp = path.with_name(f".{path.name}.tmp")
        configwrite.write_private(tmp, render(plan, auth.hash_token(token), tls_files), 0o600)
        try:
            load(tmp)  # what we wrote must load: fail here rather than at the first start
        except ValueError:
            tmp.unlink()
            raise
        tmp.replace(path)
    return Result(path, token, fingerprint, url(plan))


def summary(plan: Plan, result: Result) -> list[str]:
    token_file = result.path.resolve().parent / ADMIN_TOKEN_FILE
    points = ", ".join(f"{n} ({i.name})" for n, i in plan.points.items()) or "none"
    verify = f', verify="sha256:{result.fingerprint}"' if result.fingerprint else ""
    lines = [
        "",
        f"OpenTap is configured: {result.path}",
        f"  device name         {plan.device_name}",
        f"  URL                 {result.url}",
    ]
    if result.fingerprint:
        lines.append(f"  TLS certificate     sha256:{result.fingerprint}")
    lines += [
        f"  observation points  {points}" + (f"; default {plan.default_point}" if plan.default_point else ""),
        f"  limits              retention {plan.retention_minutes} min, windows up to {plan.capture_length_limit} s, "
        f"{plan.disk_quota_mb} MB of data, {plan.max_concurrent_captures} captures at once",
    ]
    lines += [f"  {key:<20}{value}" for key, value in plan.fixed.items()]
    lines += [
        "",
        f"Admin token (shown this once; kept in {token_file}, mode 0600):",
        f"  {result.token}",
        "",
        "In the Python client:",
        f'  Device("{result.url}", token="{result.token}"{verify})',
    ]
    return lines
