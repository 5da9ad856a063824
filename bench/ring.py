"""The packet ring's benchmark, both parts in one run (the issue that asked for rings named it bench/ring.py):

1. bench/ring_loss.py: capture loss on the ring at 100k, 200k pps and the highest rate trafgen reaches, while
   queries run, against a bare tcpdump of the same traffic (root; trafgen, from netsniff-ng);
2. bench/rings.py: a 1-minute window for one host out of a full ring against `tcpdump -r` over the same files
   with the same filter, and indexing's cost in CPU and disk.

Each part is its own program, run here one after the other (never at once: the first would measure the second);
their figures are printed as they print them, and the exit status is the first failure's.
Run: .venv/bin/python bench/ring.py [--quick] [--mb 2048]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="ring_loss.py's short run")
    ap.add_argument("--mb", type=int, default=2048, help="rings.py's ring size in MB (default 2048)")
    args = ap.parse_args()
    parts = [("capture loss while queries run (bench/ring_loss.py)",
              [sys.executable, str(HERE / "ring_loss.py"), *(["--quick"] if args.quick else [])]),
             ("a window out of a full ring, and indexing's cost (bench/rings.py)",
              [sys.executable, str(HERE / "rings.py"), "--mb", str(args.mb)])]
    status = 0
    for title, argv in parts:
        print(f"== {title}", flush=True)
        rc = subprocess.run(argv).returncode
        status = status or rc
    return status


if __name__ == "__main__":
    sys.exit(main())
