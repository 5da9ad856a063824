"""Devices over SSH: the system `ssh` runs `opentap invoke request METHOD PATH` on the device (usually as the
forced command of the client's key) and reads back an HTTP-framed answer, so everything above the transport
works as over HTTP. Arguments go to `ssh` as a list, after `--`; the remote command is quoted word by word,
so a device with a forced command and one with a plain account both get exactly these words."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import IO, Any
from urllib.parse import urlencode, urlsplit

from .transport import DeviceError, Reply

_SAFE = re.compile(r"^[A-Za-z0-9_.:\[\]-]+$")  # user and host names: nothing ssh could read as an option
CHUNK = 1 << 16


class SshTransport:
    def __init__(self, url: str, identity: str | None = None, options: Sequence[str] = (), timeout: float = 30,
                 name: str | None = None) -> None:
        parts = urlsplit(url)
        host, user = parts.hostname or "", parts.username
        if parts.scheme != "ssh" or not _SAFE.match(host) or (user is not None and not _SAFE.match(user)) \
                or host.startswith("-") or (user or "").startswith("-"):
            raise ValueError(f"not an ssh://[user@]host[:port] URL: {url!r}")
        self.name = name or host
        self.argv = ["ssh", "-o", "BatchMode=yes", "-o", f"ConnectTimeout={max(1, round(timeout))}", "-T"]
        if parts.port:
            self.argv += ["-p", str(parts.port)]
        if identity:
            self.argv += ["-i", identity, "-o", "IdentitiesOnly=yes"]
        for option in options:
            self.argv += ["-o", option]
        self.argv += ["--", f"{user}@{host}" if user else host]

    @contextmanager
    def request(self, method: str, path: str, params: dict[str, Any] | None = None,
                body: Any = None) -> Iterator[Reply]:
        query = urlencode({k: v for k, v in (params or {}).items() if v is not None}, doseq=True)
        remote = shlex.join(["opentap", "invoke", "request", method, path + (f"?{query}" if query else "")])
        with tempfile.TemporaryFile() as errors:  # a file, not a pipe: a chatty ssh cannot block us
            proc = subprocess.Popen([*self.argv, remote], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=errors)
            assert proc.stdin is not None and proc.stdout is not None
            try:
                proc.stdin.write(json.dumps(body).encode() if body is not None else b"")
                proc.stdin.close()
                status, headers = self._head(proc, errors)
                yield Reply(status, headers, self._chunks(proc.stdout))
            finally:
                if proc.poll() is None:
                    proc.kill()
                proc.wait()

    def _head(self, proc: subprocess.Popen, errors: IO[bytes]) -> tuple[int, dict[str, str]]:
        assert proc.stdout is not None
        status_line = proc.stdout.readline()
        match = re.match(rb"HTTP/1\.1 (\d{3})", status_line)
        if not match:  # ssh failed, or the far end is not an OpenTap device: say what it said
            proc.wait()
            errors.seek(0)
            said = (status_line + proc.stdout.read(4096) + errors.read(4096)).decode(errors="replace").strip()
            raise DeviceError(self.name, 0, f"cannot run opentap invoke over ssh (exit {proc.returncode}): "
                              f"{said or 'no output'}")
        headers = {}
        while (line := proc.stdout.readline().rstrip(b"\r\n")):
            key, _, value = line.decode("latin-1").partition(":")
            headers[key.strip().lower()] = value.strip()
        return int(match.group(1)), headers

    @staticmethod
    def _chunks(stream: IO[bytes]) -> Iterator[bytes]:
        while chunk := stream.read(CHUNK):
            yield chunk
