"""Writing the config: `opentap config init` (from the host's interfaces) and `opentap token create`."""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from opentap import auth, hostif, tlscert
from opentap.config import NAME_RE, ROLES, ConfigError, is_loopback, load, parse_listen

ADMIN_TOKEN_FILE = "admin-token"
TLS_CERT_FILE, TLS_KEY_FILE = "tls.crt", "tls.key"
# carries the device's own API traffic (and any local client's token): only admins may capture it
ADMIN_ONLY_INTERFACES = ("lo",)


@dataclass(frozen=True)
class Written:
    token: str | None  # the admin token (None when auth is off)
    fingerprint: str | None  # the new self-signed certificate's SHA-256 (None when there is none)


def toml_str(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid TOML basic string


def _point(iface: str) -> str:
    return point_line(iface, iface, iface in ADMIN_ONLY_INTERFACES)


def point_line(name: str, iface: str, admin_only: bool = False) -> str:
    """One line of [observation_points]."""
    key = name if NAME_RE.match(name) else toml_str(name)
    if admin_only:
        return f"{key} = {{interface = {toml_str(iface)}, admin_only = true}}"
    return f"{key} = {toml_str(iface)}"


def _tls(path: Path, host: str) -> tuple[list[str], str]:
    """A self-signed pair beside the config, for every name and address the device may be reached by."""
    addresses = hostif.addresses() if host in ("0.0.0.0", "::") else [host]
    fingerprint = tlscert.generate(path.parent / TLS_CERT_FILE, path.parent / TLS_KEY_FILE, tlscert.host_names(),
                                   addresses)
    return [f"tls_cert = {toml_str(TLS_CERT_FILE)}", f"tls_key = {toml_str(TLS_KEY_FILE)}"], fingerprint


def init(path: Path, *, listen: str = "127.0.0.1:2020", data_dir: str | None = None,
         database_url: str | None = None, auth_mode: str = "token", force: bool = False) -> Written:
    """Write a config naming one observation point per host interface (lo for admins only); return the admin
    token (None when auth is off) and, when the device listens beyond loopback, the fingerprint of the
    self-signed certificate made for it. The token itself is written only to `admin-token` (mode 0600) beside
    the config."""
    if path.exists() and not force:
        raise FileExistsError(f"{path} exists; pass --force to replace it")
    host, _port = parse_listen(Path("--listen"), "--listen", listen)
    if auth_mode == "none" and not is_loopback(host):
        raise ConfigError(path, "auth", "'none' is allowed only when listening on a loopback address")
    ifaces = hostif.names()
    default = next((i for i in ifaces if i not in ADMIN_ONLY_INTERFACES and hostif.is_up(i)),
                   ifaces[0] if ifaces else None)
    lines = [
        "# OpenTap device configuration (written by `opentap config init`). Relative paths are relative",
        "# to this file's directory. Times are seconds unless a key says otherwise.",
        f"device_name = {toml_str(socket.gethostname())}",
        f"listen = {toml_str(listen)}",
        f"data_dir = {toml_str(data_dir or 'data')}",
    ]
    if database_url:
        lines.append(f"database_url = {toml_str(database_url)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fingerprint = None
    if not is_loopback(host):  # tokens must not cross a network in the clear
        tls_lines, fingerprint = _tls(path, host)
        lines += tls_lines
    lines += [
        "retention_minutes = 60",
        "capture_length_limit = 3600",
        "max_concurrent_captures = 4",
        "disk_quota_mb = 1024",
        f'auth = "{auth_mode}"',
    ]
    if default:
        lines.append(f"default_observation_point = {toml_str(default)}")
    lines += ["", "[observation_points]  # name = interface, or {interface = ..., projects = [...], admin_only = true}"]
    lines += [_point(i) for i in ifaces]
    token = None
    if auth_mode == "token":
        token = auth.new_token()
        lines += ["", *token_block(auth.hash_token(token), "admin", ["admin"])]
    write_private(path.with_name(path.name + ".tmp"), "\n".join(lines) + "\n", 0o600).replace(path)
    if token:
        write_private(path.parent / ADMIN_TOKEN_FILE, token + "\n", 0o600)
    load(path)  # what we wrote must load; fail here rather than at `serve`
    return Written(token, fingerprint)


def token_block(digest: str, project: str, roles: list[str]) -> list[str]:
    return ["[[tokens]]", f'sha256 = "{digest}"', f"project = {toml_str(project)}",
            "roles = [" + ", ".join(toml_str(r) for r in roles) + "]"]


def write_private(path: Path, text: str, mode: int) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.chmod(path, mode)  # O_CREAT's mode does not apply to a file that already existed
    return path


def create_token(path: Path, project: str, roles: list[str]) -> str:
    """Append a new token to the config and return it. A running daemon picks it up without a restart."""
    cfg = load(path)
    if cfg.legacy_format:
        raise ConfigError(path, "tokens", "the original OpenTap format has no tokens; write a TOML config first")
    if not NAME_RE.match(project):
        raise ValueError("a project id may use only letters, digits, '_', '.', '-' (1-64)")
    bad = [r for r in roles if r not in ROLES]
    if bad or not roles:
        raise ValueError(f"roles must be among {', '.join(ROLES)}")
    token = auth.new_token()
    block = "\n" + "\n".join(token_block(auth.hash_token(token), project, roles)) + "\n"
    with open(path, "a") as f:
        f.write(block)
    load(path)
    return token
