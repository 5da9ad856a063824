"""Device configs for tests: the test tokens and SSH key, any settings, written as the TOML a user would."""

from __future__ import annotations

import json
from pathlib import Path

from opentap import auth

TOKENS = {  # token -> (project, roles)
    "tok-admin": ("admin", ["admin"]),
    "tok-alice": ("alice", ["member"]),
    "tok-alice-reader": ("alice", ["reader"]),
    "tok-bob": ("bob", ["member"]),
}


SSH_KEYS = {"tester": ("alice", ["member"])}  # name -> (project, roles), for `opentap invoke --key tester`


def _toml(value: object) -> str:
    """A setting as TOML: strings quoted, a dict as an inline table ({tap_flow = -1}), the rest as Python prints it."""
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + "}"
    return str(value)


def write_config(directory: Path, points: dict[str, str] | None = None, extra_toml: str = "",
                 **settings: object) -> Path:
    """A config with the test tokens and SSH key; settings are top-level keys (a dict: an inline table),
    extra_toml more tables."""
    points = points if points is not None else {"lo": "lo"}
    lines = [f"{k} = {_toml(v)}" for k, v in settings.items()]
    # an interface name, or a raw TOML inline table such as '{interface = "lo", projects = ["bob"]}'
    lines += ["", "[observation_points]"]
    lines += [f'"{name}" = {spec if spec.startswith("{") else repr(spec)}' for name, spec in points.items()]
    for token, (project, roles) in TOKENS.items():
        roles_toml = ", ".join(f'"{r}"' for r in roles)
        lines += ["", "[[tokens]]", f'sha256 = "{auth.hash_token(token)}"', f'project = "{project}"',
                  f"roles = [{roles_toml}]"]
    for name, (project, roles) in SSH_KEYS.items():
        lines += ["", "[[ssh_keys]]", f'name = "{name}"', f'project = "{project}"', f"roles = {json.dumps(roles)}"]
    path = directory / "opentap.conf"
    path.write_text("\n".join(lines) + "\n" + (f"\n{extra_toml}\n" if extra_toml else ""))
    return path
