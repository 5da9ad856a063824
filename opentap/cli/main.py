"""The `opentap` command. Each subcommand imports what it needs, so `opentap flows` starts fast."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from opentap import StartupError, __version__


def _serve(args: argparse.Namespace) -> int:
    import logging

    from opentap import config, configwrite, daemon

    cfg = config.load(args.config)
    if args.listen:
        cfg.listen_host, cfg.listen_port = config.parse_listen(Path("--listen"), "--listen", args.listen)
        config.check_listen(cfg, where="--listen")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if cfg.legacy_format:
        logging.warning("%s is in the original OpenTap format: no authentication, as before", cfg.path)
    url = cfg.local_url
    print(f"OpenTap device '{cfg.device_name}' at {url}  (API docs: {url}/docs; local socket {cfg.socket_path})",
          flush=True)
    if cfg.auth == "token":
        token_file = cfg.path.resolve().parent / configwrite.ADMIN_TOKEN_FILE
        print(f"Authenticate with the X-Auth-Token header, e.g.\n"
              f"  curl -H \"X-Auth-Token: $(cat {token_file})\" {url}/capabilities", flush=True)
    else:
        print("Authentication is off (auth = \"none\").", flush=True)
    return daemon.serve(cfg, Path(args.pid_file) if args.pid_file else None)


def _config_init(args: argparse.Namespace) -> int:
    from opentap import config, configwrite

    if args.interactive or args.yes or args.answers:
        from opentap.cli import configinit

        return configinit.run(args)
    path = config.config_path(args.config)
    written = configwrite.init(path, listen=args.listen, data_dir=args.data_dir, database_url=args.database_url,
                               auth_mode=args.auth, force=args.force)
    print(f"wrote {path}")
    if written.token:
        print(f"admin token written to {path.resolve().parent / configwrite.ADMIN_TOKEN_FILE} (mode 0600)")
    if written.fingerprint:
        print(f"made a self-signed TLS certificate, {path.resolve().parent / configwrite.TLS_CERT_FILE}; clients "
              f"pin it with its SHA-256 fingerprint:\n  sha256:{written.fingerprint}\n"
              f"  e.g. opentap capabilities --url https://HOST:PORT --verify sha256:{written.fingerprint}")
    return 0


def _migrate(args: argparse.Namespace) -> int:
    from opentap.cli import upgrade

    return upgrade.run(args)


def _doctor(args: argparse.Namespace) -> int:
    from opentap.cli import doctor

    return doctor.run(args)


def _token_create(args: argparse.Namespace) -> int:
    from opentap import config, configwrite

    print(configwrite.create_token(config.config_path(args.config), args.project, args.role))
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="opentap", description="OpenTap: a software-defined network tap device")
    p.add_argument("--version", action="version", version=f"opentap {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    conf_help = "config file (default: $OPENTAP_CONF or /etc/opentap/opentap.conf)"

    serve = sub.add_parser("serve", help="run the device daemon")
    serve.add_argument("--config", help=conf_help)
    serve.add_argument("--listen", help="HOST:PORT, overriding the config")
    serve.add_argument("--pid-file", help="write the daemon's pid here once the API answers (removed at exit)")
    serve.set_defaults(fn=_serve)

    cfg = sub.add_parser("config", help="write or inspect the config").add_subparsers(dest="action", required=True)
    init = cfg.add_parser("init", help="write a config from this host's interfaces, non-interactively")
    init.add_argument("--config", help=conf_help)
    init.add_argument("--listen", default="127.0.0.1:2020")
    init.add_argument("--data-dir", help="default: 'data' beside the config")
    init.add_argument("--database-url", help="default: SQLite file beside the config")
    init.add_argument("--auth", choices=("token", "none"), default="token")
    init.add_argument("--force", action="store_true", help="replace an existing config")
    init.add_argument("--interactive", action="store_true", help="ask for the settings and points (the installer's "
                      "interview); --yes takes every default, --answers FILE takes the answers from a TOML file")
    init.add_argument("--yes", action="store_true", help=argparse.SUPPRESS)
    init.add_argument("--answers", help=argparse.SUPPRESS)
    init.add_argument("--socket", help="with --interactive: the Unix socket for `opentap invoke`")
    init.add_argument("--capture-user", help="with --interactive: tcpdump drops root to this user")
    init.add_argument("--sysfs-root", default="/sys", help=argparse.SUPPRESS)  # tests: a fake /sys
    init.set_defaults(fn=_config_init)

    migrate = sub.add_parser("migrate", help="check the config and bring the database to this version's schema "
                             "(install.sh runs it at an upgrade; the daemon also does at every start)")
    migrate.add_argument("--config", help=conf_help)
    migrate.set_defaults(fn=_migrate)

    doctor = sub.add_parser("doctor", help="check what the device needs (tcpdump, capabilities, tc, interfaces, "
                            "database, disk, clock, TLS); exit status 1 on a failure")
    doctor.add_argument("--config", help=conf_help)
    doctor.add_argument("-f", "--format", choices=("table", "json"), default="table")
    doctor.set_defaults(fn=_doctor)

    token = sub.add_parser("token", help="API tokens").add_subparsers(dest="action", required=True)
    create = token.add_parser("create", help="add a token and print it")
    create.add_argument("--config", help=conf_help)
    create.add_argument("--project", required=True)
    create.add_argument("--role", action="append", choices=("admin", "member", "reader"), required=True)
    create.set_defaults(fn=_token_create)

    from opentap.cli import captures, flows, invoke, sensors, taas  # taas: tap-service-*, tap-flow-*, port-*

    flows.add_command(sub)

    captures.add_commands(sub)
    sensors.add_command(sub)
    invoke.add_command(sub)
    taas.add_commands(sub)
    return p


def _flows_only(argv: list[str]) -> argparse.Namespace:
    """`opentap flows ...` parsed without building the other commands (which import the client)."""
    from opentap.cli import flows

    p = argparse.ArgumentParser(prog="opentap")
    flows.add_command(p.add_subparsers(dest="command", required=True))
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["flows"]:
        args = _flows_only(argv)
    else:  # the capture commands' past times ("--start -10m"); imported here: `opentap flows` has none
        from opentap.cli.captures import join_past_times

        args = parser().parse_args(join_past_times(argv))
    device_error = _device_error(args)
    try:
        return args.fn(args)
    except BrokenPipeError:  # `opentap captures | head`: the reader has had enough; not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the exit flush cannot fail again
        return 0
    except device_error as e:  # the device's own message
        print(f"opentap: {e}", file=sys.stderr)
        return 1
    except StartupError as e:  # a daemon that must not start: its data directory is taken, its database broken
        print(f"opentap: {e}", file=sys.stderr)
        return 1
    except (FileExistsError, ValueError, OSError) as e:  # ValueError includes config.ConfigError
        print(f"opentap: {e}", file=sys.stderr)
        return 2


def _device_error(args: argparse.Namespace) -> type[Exception]:
    """The client's error class, for the commands that talk to a device (imported only for them)."""
    if args.command == "flows":
        return StartupError  # never raised by `opentap flows`: a stand-in that costs no import
    from opentap.client.transport import DeviceError

    return DeviceError


if __name__ == "__main__":
    sys.exit(main())
