"""Tokens: `X-Auth-Token` -> (project, roles). Only SHA-256 hashes are stored; tokens are 256 random bits,
so a fast hash is enough (there is nothing to brute-force).

`opentap invoke` (the SSH forced command) speaks for an SSH key named in the config's [[ssh_keys]]: it signs
the key's name with the device's invoke secret, a file in the data directory that only the device's own user
can read, so no token has to be handed to SSH users."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from opentap.config import Config, ConfigError, load

NO_AUTH_PROJECT = "default"


@dataclass(frozen=True)
class Principal:
    project: str
    roles: tuple[str, ...]

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles

    @property
    def can_write(self) -> bool:
        return self.is_admin or "member" in self.roles

    def owns(self, project_id: str) -> bool:
        return self.is_admin or project_id == self.project


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(32)


def _fresh(cfg: Config) -> Config:
    """Tokens and SSH keys added to the file (`opentap token create`, an edit) take effect without a restart:
    reread the file when it changes."""
    try:
        mtime = cfg.path.stat().st_mtime_ns
    except OSError:
        return cfg
    seen = _cache.get(cfg.path)
    if seen is None or seen[0] != mtime:
        try:
            fresh = load(cfg.path)
        except ConfigError:  # a half-edited file: keep what we had
            fresh = seen[1] if seen else cfg
        _cache[cfg.path] = seen = (mtime, fresh)
    return seen[1]


_cache: dict[Path, tuple[int, Config]] = {}


INVOKE_PREFIX = "ssh-key."


def invoke_secret(cfg: Config, create: bool = False) -> bytes:
    """The secret `opentap invoke` signs with; the daemon makes it (mode 0600) when it is missing."""
    path = cfg.data_dir / "invoke.secret"
    if create and not path.exists():
        cfg.data_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".invoke.secret.{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    return path.read_bytes().strip()


def _signature(cfg: Config, key_name: str) -> str:
    return hmac.new(invoke_secret(cfg), key_name.encode(), hashlib.sha256).hexdigest()


def invoke_token(cfg: Config, key_name: str) -> str:
    return f"{INVOKE_PREFIX}{key_name}.{_signature(cfg, key_name)}"


def _ssh_principal(cfg: Config, token: str) -> Principal | None:
    name, _, mac = token[len(INVOKE_PREFIX):].rpartition(".")
    key = _fresh(cfg).ssh_keys.get(name)
    if key is None:
        return None
    try:
        good = hmac.compare_digest(mac.encode(), _signature(cfg, name).encode())
    except OSError:  # no secret yet
        return None
    return Principal(key.project, key.roles) if good else None


def authenticate(cfg: Config, token: str | None) -> Principal | None:
    """The principal for a token, or None. With auth = "none" everyone is the admin of one project."""
    if cfg.auth == "none":
        return Principal(NO_AUTH_PROJECT, ("admin",))
    if not token:
        return None
    if token.startswith(INVOKE_PREFIX):
        return _ssh_principal(cfg, token)
    digest = hash_token(token)
    for t in _fresh(cfg).tokens:
        if hmac.compare_digest(t.sha256, digest):
            return Principal(t.project, t.roles)
    return None

