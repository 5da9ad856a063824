"""A real OpenSSH server on a loopback port, for the SSH tests: a generated host key and client key, and an
authorized_keys line that forces `opentap invoke --key tester` (the device's config maps that name to a
project and roles). Started and stopped by the test."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .daemon import free_port

SSHD = "/usr/sbin/sshd"
REASON = None if Path(SSHD).exists() and shutil.which("ssh") else "needs openssh-server and openssh-client"


@dataclass
class Sshd:
    port: int
    identity: Path
    known_hosts: Path

    @property
    def url(self) -> str:
        return f"ssh://root@127.0.0.1:{self.port}"

    def options(self) -> list[str]:
        return ["StrictHostKeyChecking=yes", f"UserKnownHostsFile={self.known_hosts}"]

    def ssh(self, *words: str, **kwargs: object) -> subprocess.CompletedProcess:
        argv = ["ssh", "-T", "-p", str(self.port), "-i", str(self.identity), "-o", "BatchMode=yes"]
        for option in self.options():
            argv += ["-o", option]
        return subprocess.run([*argv, "--", "root@127.0.0.1", *words], capture_output=True, timeout=60, **kwargs)


def keygen(path: Path) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path.with_suffix(".pub").read_text().strip()


@contextmanager
def running_sshd(directory: Path, conf: Path, key_name: str = "tester") -> Iterator[Sshd]:
    directory.mkdir(parents=True, exist_ok=True)
    host_pub, client_pub = keygen(directory / "host_key"), keygen(directory / "id")
    forced = f"{sys.executable} -m opentap invoke --config {conf} --key {key_name}"
    (directory / "authorized_keys").write_text(f'command="{forced}",restrict {client_pub}\n')
    port = free_port()
    (directory / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_pub}\n")
    (directory / "sshd_config").write_text("\n".join([
        f"Port {port}", "ListenAddress 127.0.0.1", f"HostKey {directory / 'host_key'}",
        f"AuthorizedKeysFile {directory / 'authorized_keys'}", "PermitRootLogin forced-commands-only",
        "PasswordAuthentication no", "KbdInteractiveAuthentication no", "UsePAM no", "StrictModes no",
        f"PidFile {directory / 'sshd.pid'}", ""]))
    Path("/run/sshd").mkdir(exist_ok=True)  # its privilege-separation directory
    with open(directory / "sshd.log", "wb") as log:
        proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(directory / "sshd_config")], stderr=log)
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    assert proc.poll() is None, (directory / "sshd.log").read_text()
                    assert time.monotonic() < deadline, "sshd did not come up"
                    time.sleep(0.05)
            yield Sshd(port, directory / "id", directory / "known_hosts")
        finally:
            proc.terminate()
            proc.wait(10)
