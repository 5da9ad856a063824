"""The real `openstack` command (python-openstackclient, from the test environment) pointed at a live device the
documented way: the admin_token plugin with OS_ENDPOINT=<url>/v2.0. Several commands can run at once (each is a
new Python process of a few seconds)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

OSC = shutil.which("openstack", path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
HAS_TAAS = any(ep.name == "tap_service_create" for ep in entry_points(group="openstack.network.v2.taas"))


@dataclass
class Done:
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        assert self.returncode == 0, self.stderr
        return json.loads(self.stdout)


def _env(url: str, token: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    env.update(OS_AUTH_TYPE="admin_token", OS_ENDPOINT=url + "/v2.0", OS_TOKEN=token)
    return env


def start(url: str, *args: str, token: str = "tok-admin") -> subprocess.Popen:
    return subprocess.Popen([str(OSC), *args], env=_env(url, token), text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


def finish(proc: subprocess.Popen) -> Done:
    out, err = proc.communicate(timeout=120)
    return Done(proc.returncode, out, err)


def run(url: str, *args: str, token: str = "tok-admin") -> Done:
    return finish(start(url, *args, token=token))


def run_all(url: str, calls: dict[str, tuple[tuple[str, ...], str]]) -> dict[str, Done]:
    """name -> (arguments, token): all started at once, then collected."""
    procs = {name: start(url, *args, token=token) for name, (args, token) in calls.items()}
    return {name: finish(proc) for name, proc in procs.items()}
