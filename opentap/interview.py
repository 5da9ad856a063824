"""The installer's interview: `opentap config init --interactive` (and `install.sh`) asks the administrator for
the device's operating parameters and observation points, then writes the config, the admin token and the TLS
pair.

Every question has a name (its key in an `--answers` file), shows its default in brackets and takes it on
Enter; a bad answer is explained and asked again (from a file or `--yes` it stops the interview instead).
Nothing is written until every question has been answered, and then with Ctrl-C held off, so an interrupted
interview leaves nothing half-written. Questions and answers go through a Console, so tests drive it too."""

from __future__ import annotations

import errno
import shutil
import socket
import ssl
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from opentap import hostif
from opentap.config import NAME_RE, is_loopback, parse_listen

T = TypeVar("T")
NO_POINT = "-"  # the answer for "this interface is not an observation point"


class Console(Protocol):
    def ask(self, prompt: str) -> str: ...  # one line, without its newline; EOFError when there is no more

    def say(self, text: str = "") -> None: ...


class TerminalConsole:
    def ask(self, prompt: str) -> str:
        return input(prompt)

    def say(self, text: str = "") -> None:
        print(text, flush=True)


class AnswerError(ValueError):
    """An unattended interview met an answer it cannot use (from the file, or a default that does not fit)."""


@dataclass(frozen=True)
class Interface:
    name: str
    state: str  # the kernel's operstate: up, down, unknown
    mac: str
    addresses: tuple[str, ...]


@dataclass
class Host:
    """What the interview reads of this host; tests give their own."""
    hostname: str
    interfaces: list[Interface]
    free_mb: Callable[[Path], float]  # free space of the filesystem holding a path
    listen_problem: Callable[[str, int], str | None]  # why HOST:PORT cannot be listened on, or None


@dataclass
class Plan:
    """The answers, ready to be written (opentap/interviewwrite.py)."""
    device_name: str
    listen: str
    tls: str  # "generate", "files" or "none" (loopback only)
    tls_cert: str | None
    tls_key: str | None
    points: dict[str, Interface]  # point name -> interface
    default_point: str | None
    retention_minutes: int
    capture_length_limit: int
    disk_quota_mb: int
    max_concurrent_captures: int
    fixed: dict[str, str] = field(default_factory=dict)  # what the installer decides: data_dir, socket, ...
    addresses: tuple[str, ...] = ()  # every address of the host: the certificate's names, the URL shown
    sensors: bool = False  # look for sensors and name them once the config is written (opentap/cli/sensors.py)


def this_host() -> Host:
    ifaces = []
    for name in hostif.names():
        mac, _up = hostif.state(name)
        try:
            addrs = tuple(hostif.addresses(name))
        except OSError:
            addrs = ()
        ifaces.append(Interface(name, hostif.operstate(name), mac, addrs))
    return Host(socket.gethostname(), ifaces, _free_mb, _listen_problem)


def _free_mb(path: Path) -> float:
    while not path.exists():  # the data directory is made later: ask the filesystem it will be on
        path = path.parent
    return shutil.disk_usage(path).free / 2**20


def _listen_problem(host: str, port: int) -> str | None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                return f"port {port} is in use by another program on this host"
            if e.errno == errno.EADDRNOTAVAIL:
                return f"{host} is not an address of this host"
            return f"cannot listen on {host}:{port}: {e.strerror}"
    return None


class Asker:
    """Asks one question in the mode chosen: interactively, from an answers file, or taking every default."""

    def __init__(self, console: Console, answers: Mapping[str, Any] | None = None, defaults_only: bool = False) -> None:
        self.console, self.defaults_only = console, defaults_only
        self.answers = dict(answers) if answers is not None else None
        self.used: set[str] = set()

    @property
    def interactive(self) -> bool:
        return self.answers is None and not self.defaults_only

    def ask(self, name: str, text: str, default: str, parse: Callable[[str], T]) -> T:
        if not self.interactive:
            given = self.answers.get(name) if self.answers is not None else None
            self.used.add(name)
            raw = default if given is None else str(given)
            try:
                return parse(raw.strip())
            except ValueError as e:
                where = f"'{name}' in the answers file" if given is not None else f"the default for '{name}'"
                raise AnswerError(f"{where} ({raw!r}): {e}") from None
        while True:
            raw = self.console.ask(f"{text} [{default}]: ").strip()
            try:
                return parse(raw or default)
            except ValueError as e:
                self.console.say(f"  ! {e}; try again")


def whole(what: str, low: int = 1, high: int = 10**9) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        if not raw.isascii() or not raw.isdigit() or not low <= int(raw) <= high:
            raise ValueError(f"{what} must be a whole number from {low} to {high} (got {raw!r})")
        return int(raw)
    return parse


def _name(raw: str) -> str:
    if not raw:
        raise ValueError("a name is needed")
    if any(ord(c) < 32 for c in raw) or len(raw) > 64:
        raise ValueError("at most 64 characters, no control characters")
    return raw


def _listen(host: Host) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        if ":" not in raw and raw.isdigit():
            raw = f"0.0.0.0:{raw}"  # a port alone: every interface
        try:
            addr, port = parse_listen(Path("listen"), "listen", raw)
        except ValueError as e:
            raise ValueError(str(e).split(": ", 2)[-1]) from None  # without the config file's name and key
        problem = host.listen_problem(addr, port)
        if problem:
            raise ValueError(problem)
        return raw
    return parse


def _choice(options: tuple[str, ...]) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        if raw.lower() not in options:
            raise ValueError(f"answer one of: {', '.join(options)}")
        return raw.lower()
    return parse


def _readable(what: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        path = Path(raw)
        if not path.is_absolute():
            raise ValueError(f"give the {what}'s full path")
        try:
            path.read_bytes()
        except OSError as e:
            raise ValueError(f"cannot read {path}: {e.strerror}") from None
        return raw
    return parse


def _pair(cert: str, key: str) -> None:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        ctx.load_cert_chain(cert, key)
    except (ssl.SSLError, OSError) as e:
        raise ValueError(f"{cert} and {key} are not a certificate and its key: {e}") from None


def interview(asker: Asker, host: Host, data_dir: Path, fixed: Mapping[str, str] | None = None) -> Plan:
    """Ask every question (or take the answers) and return the plan; nothing is written here."""
    say = asker.console.say if asker.interactive else (lambda text="": None)
    say("OpenTap device set-up. Press Enter to take the answer in [brackets]; Ctrl-C stops without writing "
        "anything.\n")
    device_name = asker.ask("device_name", "Device name", host.hostname, _name)
    listen = asker.ask("listen", "Listen on (ADDRESS:PORT; 0.0.0.0 is every interface)", "0.0.0.0:2020",
                       _listen(host))
    loopback = is_loopback(parse_listen(Path("listen"), "listen", listen)[0])
    tls_options = ("generate", "files", "none") if loopback else ("generate", "files")
    tls = asker.ask("tls", "TLS: generate a self-signed certificate, or use your own files"
                    + (" (or none: plain HTTP on loopback)" if loopback else ""),
                    "none" if loopback else "generate", _choice(tls_options))
    tls_cert = tls_key = None
    while tls == "files":
        tls_cert = asker.ask("tls_cert", "Certificate file (PEM)", "/etc/opentap/tls.crt", _readable("certificate"))
        tls_key = asker.ask("tls_key", "Its private key (PEM)", "/etc/opentap/tls.key", _readable("key"))
        try:
            _pair(tls_cert, tls_key)
            break
        except ValueError as e:
            if not asker.interactive:
                raise AnswerError(f"'tls_cert' and 'tls_key': {e}") from None
            say(f"  ! {e}; try again")
    points = _points(asker, host, say)
    default_point = None
    if points:
        # an interface with a link, and not lo: the default is what members capture on when they name none
        up = [n for n, i in points.items() if i.state == "up" and i.name != "lo"]
        default_point = asker.ask("default_point", f"Default observation point ({', '.join(points)})",
                                  (up or list(points))[0], _choice(tuple(points)))
    retention = asker.ask("retention_minutes", "Keep finished captures for (minutes)", "60",
                          whole("retention", 1, 10**7))
    length = asker.ask("capture_length_limit", "Longest capture window (seconds)", "3600",
                       whole("the longest window", 1, 10**8))
    free = int(host.free_mb(data_dir))
    quota = asker.ask("disk_quota_mb", f"Disk quota for all captured data (MB; {free} MB free on {data_dir}'s disk)",
                      str(max(1, min(1024, free * 8 // 10))), whole("the quota", 1, max(1, free)))
    concurrent = asker.ask("max_concurrent_captures", "Captures at the same time, at most", "4",
                           whole("the number of captures", 1, 1000))
    # Sensors are named after the config is written, by the same questions as `opentap sensors detect --write`:
    # they need the hardware's answers (which Phidget is on which port), not only the administrator's.
    sensors = asker.ask("sensors", "Look for sensors (Phidgets; this host's hwmon, thermal, IIO) and name them "
                        "(yes/no)", "no", _choice(("yes", "no"))) == "yes"
    if asker.answers is not None:
        unknown = sorted(k for k in _flat(asker.answers) if k not in asker.used)
        if unknown:
            raise AnswerError(f"the answers file has '{unknown[0]}', which is not a question here")
    return Plan(device_name, listen, tls, tls_cert, tls_key, points, default_point, retention, length, quota,
                concurrent, dict(fixed or {}), tuple(a for i in host.interfaces for a in i.addresses), sensors)


def _points(asker: Asker, host: Host, say: Callable[..., None]) -> dict[str, Interface]:
    say("\nThis host's interfaces:")
    say(f"  {'interface':<16}{'state':<10}{'MAC':<19}addresses")
    for i in host.interfaces:
        say(f"  {i.name:<16}{i.state:<10}{i.mac or '-':<19}{', '.join(i.addresses) or '-'}")
    say(f"\nName each interface that is an observation point ('{NO_POINT}': not one). lo carries the device's own "
        "API traffic: it is for admins only if you name it.")
    if asker.answers is not None:
        table = asker.answers.get("points", {})
        if not isinstance(table, dict):
            raise AnswerError("'points' in the answers file must be a table: [points] with INTERFACE = \"NAME\"")
        known = {i.name for i in host.interfaces}
        for iface in table:
            if iface not in known:
                raise AnswerError(f"'points.{iface}' in the answers file: this host has no interface {iface!r}")
        asker.answers.update({f"points.{k}": (v if v else NO_POINT) for k, v in table.items()})
        asker.used.add("points")
    points: dict[str, Interface] = {}
    for i in host.interfaces:
        default = NO_POINT if i.name == "lo" or not NAME_RE.match(i.name) else i.name

        def parse(raw: str, iface: str = i.name) -> str:
            if raw == NO_POINT:
                return raw
            if not NAME_RE.match(raw):
                raise ValueError("a point name may use only letters, digits, '_', '.', '-' (1-64)")
            if raw in points:
                raise ValueError(f"{raw!r} already names {points[raw].name}")
            return raw

        name = asker.ask(f"points.{i.name}", f"  {i.name}: observation point name", default, parse)
        if name != NO_POINT:
            points[name] = i
    if not points:
        say("  (no observation points: captures need one; add them to the config later)")
    return points


def _flat(answers: Mapping[str, Any]) -> list[str]:
    return [k for k, v in answers.items() if not isinstance(v, dict)]


def read_answers(path: Path) -> dict[str, Any]:
    """An answers file: TOML keyed by the question names, with a [points] table (interface = point name)."""
    try:
        return tomllib.loads(path.read_text())
    except OSError as e:
        raise AnswerError(f"cannot read the answers file {path}: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise AnswerError(f"{path}: not valid TOML: {e}") from None
