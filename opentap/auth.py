"""Tokens: `X-Auth-Token` -> (project, roles). Only SHA-256 hashes are stored; tokens are 256 random bits,
so a fast hash is enough (there is nothing to brute-force)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from pathlib import Path

from opentap.config import Config, ConfigError, Token, load

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


def _fresh_tokens(cfg: Config) -> list[Token]:
    """Tokens added by `opentap token create` take effect without a restart: reread them when the file changes."""
    try:
        mtime = cfg.path.stat().st_mtime_ns
    except OSError:
        return cfg.tokens
    seen = _token_cache.get(cfg.path)
    if seen is None or seen[0] != mtime:
        try:
            tokens = load(cfg.path).tokens
        except ConfigError:  # a half-edited file: keep what we had
            tokens = seen[1] if seen else cfg.tokens
        _token_cache[cfg.path] = seen = (mtime, tokens)
    return seen[1]


_token_cache: dict[Path, tuple[int, list[Token]]] = {}


def authenticate(cfg: Config, token: str | None) -> Principal | None:
    """The principal for a token, or None. With auth = "none" everyone is the admin of one project."""
    if cfg.auth == "none":
        return Principal(NO_AUTH_PROJECT, ("admin",))
    if not token:
        return None
    digest = hash_token(token)
    for t in _fresh_tokens(cfg):
        if hmac.compare_digest(t.sha256, digest):
            return Principal(t.project, t.roles)
    return None

