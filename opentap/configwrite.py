"""Writing the config: `opentap config init` (from the host's interfaces) and `opentap token create`."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

from opentap import auth
from opentap.config import IFACE_RE, NAME_RE, ROLES, ConfigError, load

ADMIN_TOKEN_FILE = "admin-token"


def host_interfaces() -> list[str]:
    return [name for _idx, name in sorted(socket.if_nameindex()) if IFACE_RE.match(name)]


def _is_up(name: str) -> bool:
    try:
        return Path(f"/sys/class/net/{name}/operstate").read_text().strip() in ("up", "unknown")
    except OSError:
        return False


def _toml_str(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid TOML basic string


def init(path: Path, *, listen: str = "127.0.0.1:2020", data_dir: str | None = None,
         database_url: str | None = None, auth_mode: str = "token", force: bool = False) -> str | None:
    """Write a config naming one observation point per host interface; return the admin token (or None
    when auth is off). The token itself is written only to `admin-token` (mode 0600) beside the config."""
    if path.exists() and not force:
        raise FileExistsError(f"{path} exists; pass --force to replace it")
    ifaces = host_interfaces()
    default = next((i for i in ifaces if i != "lo" and _is_up(i)), ifaces[0] if ifaces else None)
    lines = [
        "# OpenTap device configuration (written by `opentap config init`). Relative paths are relative",
        "# to this file's directory. Times are seconds unless a key says otherwise.",
        f"device_name = {_toml_str(socket.gethostname())}",
        f"listen = {_toml_str(listen)}",
        f"data_dir = {_toml_str(data_dir or 'data')}",
    ]
    if database_url:
        lines.append(f"database_url = {_toml_str(database_url)}")
    lines += [
        "retention_minutes = 60",
        "capture_length_limit = 3600",
        "max_concurrent_captures = 4",
        "disk_quota_mb = 1024",
        f'auth = "{auth_mode}"',
    ]
    if default:
        lines.append(f"default_observation_point = {_toml_str(default)}")
    lines += ["", "[observation_points]  # name = interface, or name = {interface = ..., projects = [...]}"]
    lines += [f"{_toml_str(i) if not NAME_RE.match(i) else i} = {_toml_str(i)}" for i in ifaces]
    token = None
    if auth_mode == "token":
        token = auth.new_token()
        lines += ["", *_token_block(auth.hash_token(token), "admin", ["admin"])]
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_private(path.with_name(path.name + ".tmp"), "\n".join(lines) + "\n", 0o600).replace(path)
    if token:
        _write_private(path.parent / ADMIN_TOKEN_FILE, token + "\n", 0o600)
    load(path)  # what we wrote must load; fail here rather than at `serve`
    return token


def _token_block(digest: str, project: str, roles: list[str]) -> list[str]:
    return ["[[tokens]]", f'sha256 = "{digest}"', f"project = {_toml_str(project)}",
            "roles = [" + ", ".join(_toml_str(r) for r in roles) + "]"]


def _write_private(path: Path, text: str, mode: int) -> Path:
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
    block = "\n" + "\n".join(_token_block(auth.hash_token(token), project, roles)) + "\n"
    with open(path, "a") as f:
        f.write(block)
    load(path)
    return token
