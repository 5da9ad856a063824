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
    if plan.sensors:
        _name_sensors(path, console, asker.interactive, Path(args.sysfs_root))
    return 0


def _name_sensors(path: Path, console: interview.Console, interactive: bool, sysfs: Path) -> None:
    """The interview's sensors question: the same listing and names as `opentap sensors detect --write`.
    Unattended, the host's sensors take their suggested names and Phidgets are left out (which part is on which
    port is for a person to say)."""
    from opentap.cli import sensors

    def unattended(_prompt: str) -> str:
        return ""  # the suggested name; for a Phidget's part number: no sensor there

    console.say("\nSensors:")
    ask = console.ask if interactive else unattended
    found, host = sensors.show(sysfs, 1.0, ask if interactive else None)
    if found and not interactive:
        console.say("Phidgets are named with `opentap sensors detect --write`: each needs its part number")
    sensors.add(path, found, host, ask)
