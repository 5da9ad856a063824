"""When the capture driver asks tcpdump to flush (SIGUSR2): only when nothing reached the open chunk since the
last tick. tcpdump flushes inside its signal handler, which can cut a record in two when the signal lands
during a write, so a busy capture, whose buffer writes itself, is never signalled. A child that counts the
signals it gets stands in for tcpdump here; the flushing itself is tcpdump's and is tested with it."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from opentap.capture.tcpdump import TcpdumpDriver

COUNTER = """
import signal, sys, time
n = 0
def got(*_):
    global n
    n += 1
    open(sys.argv[1], "w").write(str(n))
signal.signal(signal.SIGUSR2, got)
print("ready", flush=True)
time.sleep(60)
"""


def test_only_a_chunk_that_did_not_grow_is_flushed(tmp_path: Path) -> None:
    chunk = tmp_path / ".seg001.pcap"
    chunk.write_bytes(b"\0" * 24)
    count = tmp_path / "signals"
    driver = TcpdumpDriver(tmp_path, "lo", 1, snaplen=262144, bpf=None, buffer_kib=4096, chunk_mb=64)
    driver.proc = subprocess.Popen([sys.executable, "-c", COUNTER, str(count)], stdout=subprocess.PIPE, text=True)
    try:
        assert driver.proc.stdout is not None and driver.proc.stdout.readline() == "ready\n"

        def signals() -> int:
            time.sleep(0.2)  # the child's handler runs
            return int(count.read_text()) if count.exists() else 0

        driver.tick()  # the first look at the chunk
        assert signals() == 0
        driver.tick()  # nothing written since: packets may wait in tcpdump's buffer
        assert signals() == 1
        with chunk.open("ab") as f:
            f.write(b"\0" * 100)
        driver.tick()  # it grew: tcpdump is writing, and is not to be interrupted
        assert signals() == 1
        driver.tick()
        assert signals() == 2
        (tmp_path / ".seg001.pcap1").write_bytes(b"\0" * 24)  # a new chunk: written to, so no signal
        driver.tick()
        assert signals() == 2 and (tmp_path / "packets-001-000000.pcap").exists()
    finally:
        driver.proc.kill()
        driver.proc.wait()
