"""Tokens: `X-Auth-Token` -> (project, roles). Only SHA-256 hashes are stored; tokens are 256 random bits,
so a fast hash is enough (there is nothing to brute-force).

`opentap invoke` (the SSH forced command) speaks for an SSH key named in the config's [[ssh_keys]]. It talks
to the daemon on a Unix socket, where the kernel tells the daemon who the caller is, so no token or signature
ever travels where a capture (of lo, say) could pick it up and replay it."""

from __future__ import annotations

import grp
import hashlib
import hmac
import os
import pwd
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


@dataclass(frozen=True)
class Peer:
    """Who is at the other end of a Unix socket connection, as the kernel says (SO_PEERCRED)."""
    pid: int
    uid: int
    gid: int


def _in_group(uid: int, gid: int, group: str) -> bool:
    try:
        wanted = grp.getgrnam(group).gr_gid
        name = pwd.getpwuid(uid).pw_name
    except KeyError:
        return False
    return wanted == gid or wanted in os.getgrouplist(name, gid)


def peer_allowed(cfg: Config, peer: Peer) -> bool:
    """Root, the daemon's own user, and members of the socket's group. The socket's mode already keeps the
    rest out; this is the second lock on the same door."""
    if peer.uid in (0, os.geteuid()):
        return True
    return cfg.socket_group is not None and _in_group(peer.uid, peer.gid, cfg.socket_group)


def authenticate_local(cfg: Config, peer: Peer, key_name: str | None, token: str | None) -> Principal | None:
    """A caller on the Unix socket: a trusted local account speaking for an SSH key of [[ssh_keys]] (the key's
    forced command names it), or presenting a token like any client."""
    if not peer_allowed(cfg, peer):
        return None
    if key_name:
        if cfg.auth == "none":
            return Principal(NO_AUTH_PROJECT, ("admin",))
        key = _fresh(cfg).ssh_keys.get(key_name)
        return Principal(key.project, key.roles) if key else None
    return authenticate(cfg, token)


def config_projects(cfg: Config) -> set[str]:
    """The projects the config's tokens and SSH keys act for (and, without authentication, the one everybody is
    in), as the file says now."""
    fresh = _fresh(cfg)
    found = {t.project for t in fresh.tokens} | {k.project for k in fresh.ssh_keys.values()}
    if cfg.auth == "none":
        found.add(NO_AUTH_PROJECT)
    return found


def authenticate(cfg: Config, token: str | None) -> Principal | None:
    """The principal for a token, or None. With auth = "none" everyone is the admin of one project."""
    if cfg.auth == "none":
        return Principal(NO_AUTH_PROJECT, ("admin",))
    if not token:
        return None
    digest = hash_token(token)
    for t in _fresh(cfg).tokens:
        if hmac.compare_digest(t.sha256, digest):
            return Principal(t.project, t.roles)
    return None

