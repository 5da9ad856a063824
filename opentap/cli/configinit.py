"""`opentap config init --interactive`: the interview (opentap/interview.py), unattended with --yes or
--answers FILE, then the files and the summary (opentap/interviewwrite.py)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from opentap import config, interview, interviewwrite


def fixed_settings(args: argparse.Namespace, path: Path) -> dict[str, str]:
    """What the installer decides rather than asks: where data, the database and the socket go, who captures."""
    base = path.resolve().parent
    data_dir = Path(args.data_dir) if args.data_dir else base / "data"
    out = {"data_dir": str(data_dir),
           "database_url": args.database_url or f"sqlite:///{base / 'opentap.db'}"}
    if args.socket:
        out["socket"] = args.socket
    if args.capture_user:
        out["capture_user"] = args.capture_user
    return out


def run(args: argparse.Namespace) -> int:
    path = config.config_path(args.config)
    if path.exists() and not args.force:
        raise FileExistsError(f"{path} exists; pass --force to replace it")
    if args.yes and args.answers:
        raise ValueError("--yes and --answers exclude each other")
    fixed = fixed_settings(args, path)
    answers = interview.read_answers(Path(args.answers)) if args.answers else None
    console = interview.TerminalConsole()
    asker = interview.Asker(console, answers, defaults_only=args.yes)
    try:
        plan = interview.interview(asker, interview.this_host(), Path(fixed["data_dir"]), fixed)
    except KeyboardInterrupt:
        print("\ninterrupted: nothing was written", file=sys.stderr)
        return 130
    except EOFError:
        print("\nno more answers on standard input: nothing was written (unattended: --yes or --answers FILE)",
              file=sys.stderr)
        return 1
    except interview.AnswerError as e:
        print(f"opentap: {e}; nothing was written", file=sys.stderr)
        return 2
    result = interviewwrite.write(plan, path)
    for line in interviewwrite.summary(plan, result):
        console.say(line)
    return 0
