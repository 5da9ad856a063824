"""Run a command; write its peak resident memory (KiB) to a file. Usage: peak_rss.py OUT CMD [ARGS...]

A child's ru_maxrss counts the memory of the process it was forked from (Linux keeps the high-water mark
across exec), so measuring straight from a benchmark that holds a large pcap in memory would report the
benchmark's size. Forked from this small process instead, the floor is a few MiB. Signals are passed on,
so the command can be stopped through this wrapper.
"""

import os
import signal
import sys


def main() -> int:
    out, argv = sys.argv[1], sys.argv[2:]
    pid = os.fork()
    if pid == 0:
        os.execvp(argv[0], argv)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda s, _frame: os.kill(pid, s))
    _, status, usage = os.wait4(pid, 0)
    with open(out, "w") as f:
        f.write(str(usage.ru_maxrss))
    return os.waitstatus_to_exitcode(status)


if __name__ == "__main__":
    sys.exit(main())
