"""A throwaway root for install.sh: a private mount namespace in which /opt and /usr/local/bin are empty tmpfs
and /etc, /var and /run are overlays whose changes live in a tmpfs. install.sh runs there for real (the venv,
/etc/opentap, /var/lib/opentap, the system user, the unit file) and the host sees none of it: when the
namespace's last process ends, its mounts and everything written to them are gone.

The namespace is held by a `sleep` started with `unshare --mount --propagation private`; commands enter it
with nsenter, and the test reads its files through /proc/PID/root. The network is the host's, so the daemon
installed there captures on the test's namespace links and answers on loopback."""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

import pexpect

REPO = Path(__file__).resolve().parents[2]
EMPTY = ("/opt", "/usr/local/bin")
OVERLAID = ("/etc", "/var", "/run")


def wheelhouse() -> Path:
    """Wheels of OpenTap's dependencies (and the setuptools its build needs), made once per set of
    requirements, so install.sh runs offline and fast inside the namespace (PIP_NO_INDEX, PIP_FIND_LINKS)."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    requirements = [*project["project"]["dependencies"], *project["build-system"]["requires"]]
    key = hashlib.sha256("\n".join(requirements).encode()).hexdigest()[:16]
    target = Path(tempfile.gettempdir()) / f"opentap-wheelhouse-{key}"
    if not (target / "complete").exists():
        subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "-w", str(target), *requirements], check=True,
                       stdout=subprocess.DEVNULL)
        (target / "complete").touch()
    return target


class InstallRoot:
    def __init__(self, work: Path) -> None:
        self.work = work
        self.holder = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sleep", "3600"])
        deadline = time.monotonic() + 10
        while self._ns(self.holder.pid) == self._ns(os.getpid()):  # until unshare has made the namespace
            assert time.monotonic() < deadline, "unshare did not make a mount namespace"
            time.sleep(0.01)
        self.mnt_ns = self._ns(self.holder.pid)
        try:
            self._mount()
        except BaseException:
            self.close()
            raise

    @staticmethod
    def _ns(pid: int) -> str | None:
        try:
            return os.readlink(f"/proc/{pid}/ns/mnt")
        except OSError:
            return None

    def _mount(self) -> None:
        layers = self.work / "layers"
        layers.mkdir()
        self.run("mount", "-t", "tmpfs", "opentap-test", str(layers))
        for path in EMPTY:
            self.run("mount", "-t", "tmpfs", "opentap-test", path)
        for path in OVERLAID:
            upper, work = f"{layers}{path}/upper", f"{layers}{path}/work"
            self.run("mkdir", "-p", upper, work)
            self.run("mount", "-t", "overlay", "opentap-test", "-o",
                     f"lowerdir={path},upperdir={upper},workdir={work}", path)

    def argv(self, *argv: str) -> list[str]:
        return ["nsenter", "-t", str(self.holder.pid), "-m", "--", *argv]

    def env(self) -> dict[str, str]:
        """The installer's environment: offline pip from the wheelhouse, no terminal colours."""
        return {**os.environ, "PIP_CONFIG_FILE": os.devnull, "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(wheelhouse()),
                "PIP_DISABLE_PIP_VERSION_CHECK": "1", "TERM": "dumb"}

    def run(self, *argv: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
        out = subprocess.run(self.argv(*argv), capture_output=True, text=True, env=self.env(), timeout=timeout)
        if check and out.returncode != 0:
            raise AssertionError(f"{argv} exited {out.returncode}:\n{out.stdout}\n{out.stderr}")
        return out

    def spawn(self, *argv: str, timeout: float = 300) -> pexpect.spawn:
        args = self.argv(*argv)
        child = pexpect.spawn(args[0], args[1:], env=self.env(), encoding="utf-8", timeout=timeout,
                              dimensions=(50, 200))
        child.logfile_read = open(self.work / "terminal.log", "a")  # noqa: SIM115 - closed with the child
        return child

    def path(self, path: str) -> Path:
        """A file as the namespace sees it."""
        return Path(f"/proc/{self.holder.pid}/root{path}")

    def processes(self) -> list[int]:
        """Processes in the namespace, besides the one holding it: the installed daemon and its children."""
        pids = []
        for entry in os.listdir("/proc"):
            if entry.isdigit() and int(entry) != self.holder.pid and self._ns(int(entry)) == self.mnt_ns:
                pids.append(int(entry))
        return pids

    def close(self) -> None:
        for pid in self.processes():  # whatever a failed test left running there
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.holder.kill()
        self.holder.wait(10)
