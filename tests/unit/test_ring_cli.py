"""`opentap capture ethernet --start -10m --stop -5m`: past times reach the device as times in the past (argparse
alone would take -10m for an option)."""

from __future__ import annotations

from opentap.cli.captures import join_past_times
from opentap.cli.main import parser
from opentap.client.times import parse_time


def test_past_times_on_the_command_line() -> None:
    argv = ["capture", "ethernet", "--start", "-10m", "--stop", "-5m", "--filter", "host 198.18.0.5"]
    args = parser().parse_args(join_past_times(argv))
    assert (args.start, args.stop, args.filter) == ("-10m", "-5m", "host 198.18.0.5")
    assert parse_time(args.start, 1000.0) == 400.0 and parse_time(args.stop, 1000.0) == 700.0
    # only the values of --start and --stop are joined: other arguments are left as they are
    assert join_past_times(["capture", "--filter", "-1", "--start", "now"]) == ["capture", "--filter", "-1", "--start",
                                                                               "now"]
