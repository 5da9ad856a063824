"""The device's configuration: `opentap.conf` in TOML, or the original OpenTap's `key: value` format.

Every check names the key and the problem, so a bad file fails at start with a message an admin can act on.
Relative paths in the file are taken relative to the file's own directory.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from opentap import exportaddr, hostif

DEFAULT_PATH = Path("/etc/opentap/opentap.conf")
ROLES = ("admin", "member", "reader")
NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
KNOWN_KEYS = {
    "device_name", "listen", "data_dir", "database_url", "retention_minutes", "capture_length_limit",
    "max_concurrent_captures", "disk_quota_mb", "default_observation_point", "observation_points", "auth",
    "tokens", "capture_buffer_kib", "chunk_mb", "gc_interval_seconds", "flow_active_timeout", "flow_idle_timeout",
    "tap_id_range", "ssh_keys", "tls_cert", "tls_key", "socket", "socket_group", "data_group", "capture_user",
    "ssh_port", "project_max_concurrent_captures", "project_disk_quota_mb", "projects", "taas_quota",
    "ethernet_default_format", "metrics_listen", "sensors", "export", "host", "tunnel_ip", "agent_down_time",
}
# TaaS quotas per project, as Neutron's: -1 = unlimited. Bounded by default so that one project's members cannot
# fill the kernel with mirror filters; an admin raises a project's quota through PUT /v2.0/quotas/{project}.
TAAS_QUOTA_DEFAULTS = {"tap_service": 10, "tap_flow": 100}
QUOTA_MAX = 2**31 - 1  # Neutron's DB_INTEGER_MAX_VALUE


class ConfigError(ValueError):
    """A problem in the config file, naming the key."""

    def __init__(self, path: Path | str, key: str, problem: str) -> None:
        super().__init__(f"{path}: key '{key}': {problem}")
        self.key = key


@dataclass(frozen=True)
class ObservationPoint:
    name: str
    interface: str
    projects: tuple[str, ...] = ()  # empty = every project may use it
    admin_only: bool = False  # e.g. lo, which carries the device's own API traffic
    ring_mb: float = 0  # the point's packet ring at start (configrings.py); 0: none

    def usable_by(self, project: str, admin: bool) -> bool:
        if admin:
            return True
        return not self.admin_only and (not self.projects or project in self.projects)


@dataclass(frozen=True)
class ProjectLimits:
    """A project's share of the device: captures whose windows overlap, and captured data."""
    max_concurrent_captures: int
    disk_quota_mb: float

    @property
    def disk_quota_bytes(self) -> int:
        return int(self.disk_quota_mb * 1024 * 1024)


@dataclass(frozen=True)
class Token:
    sha256: str
    project: str
    roles: tuple[str, ...]


@dataclass(frozen=True)
class SshKey:
    """An SSH key allowed to run `opentap invoke --key NAME` (its authorized_keys line says which name)."""
    name: str
    project: str
    roles: tuple[str, ...]


@dataclass
class Config:
    path: Path
    device_name: str
    listen_host: str
    listen_port: int
    data_dir: Path
    database_url: str
    retention_minutes: float = 60
    capture_length_limit: float = 3600
    max_concurrent_captures: int = 4
    disk_quota_mb: float = 1024
    default_observation_point: str | None = None
    observation_points: dict[str, ObservationPoint] = field(default_factory=dict)
    sensor_points: dict = field(default_factory=dict)  # name -> configsensors.SensorPoint ([sensors.NAME])
    auth: str = "token"
    tokens: list[Token] = field(default_factory=list)
    ssh_keys: dict[str, SshKey] = field(default_factory=dict)
    capture_buffer_kib: int = 32768
    chunk_mb: int = 64
    gc_interval_seconds: float = 30
    flow_active_timeout: float = 1800  # seconds: long flows are reported in parts of at most this length
    flow_idle_timeout: float = 15  # seconds without a packet end a flow
    export: str | None = None  # netflow captures also send their records to this collector (exportaddr.py)
    tap_id_range: tuple[int, int] = (1, 4094)  # ids handed to tap services (the datapath's marks, tunnel ids)
    taas_quota: dict[str, int] = field(default_factory=lambda: dict(TAAS_QUOTA_DEFAULTS))
    legacy_format: bool = False
    tls_cert: Path | None = None
    tls_key: Path | None = None
    socket: Path | None = None  # the Unix socket `opentap invoke` reaches the daemon on
    socket_group: str | None = None  # a group whose members may use the socket (mode 0660), e.g. the SSH account's
    data_group: str | None = None  # a group that may read captured data (directories 0750, files 0640)
    capture_user: str | None = None  # tcpdump drops root to this user, who then owns the capture files
    ssh_port: int = 22  # the device's own SSH traffic is left out of captures, like its API traffic
    # what a retrieve of an ethernet capture gives when it names no format: "pcap", or "csv" for the original
    # OpenTap's clients, which read every retrieve as CSV (its `time` column is what they parse)
    ethernet_default_format: str = "pcap"
    # per project, unless [projects.NAME] says otherwise; None: the device-wide value
    project_max_concurrent_captures: int | None = None
    project_disk_quota_mb: float | None = None
    projects: dict[str, dict[str, float]] = field(default_factory=dict)
    # TaaS across hosts (DESIGN.md, "Hosts"): this daemon's host name, which ports name in binding:host_id (default:
    # device_name, itself the machine's hostname by default, so ports made before keep their host), the address
    # other hosts' tunnels reach it at (None: no tunnels to or from here), and how long a host may go without a
    # heartbeat before its agent counts as dead
    host: str = ""
    tunnel_ip: str | None = None
    agent_down_time: float = 15
    metrics_listen: tuple[str, int] | None = None  # /metrics without a token, on this loopback HOST:PORT

    @property
    def listen(self) -> str:
        return f"{self.listen_host}:{self.listen_port}"

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None

    @property
    def local_authority(self) -> str:
        """host:port where a process on this host reaches the daemon over TCP (a wildcard address: loopback)."""
        host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(self.listen_host, self.listen_host)
        return f"[{host}]:{self.listen_port}" if ":" in host else f"{host}:{self.listen_port}"

    @property
    def local_url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.local_authority}"

    @property
    def socket_path(self) -> Path:
        return self.socket or self.path.resolve().parent / "opentap.sock"

    @property
    def disk_quota_bytes(self) -> int:
        return int(self.disk_quota_mb * 1024 * 1024)

    def limits(self, project: str) -> ProjectLimits:
        own = self.projects.get(project, {})
        concurrent = own.get("max_concurrent_captures", self.project_max_concurrent_captures)
        quota = own.get("disk_quota_mb", self.project_disk_quota_mb)
        return ProjectLimits(int(concurrent if concurrent is not None else self.max_concurrent_captures),
                             quota if quota is not None else self.disk_quota_mb)


def config_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """--config wins, then OPENTAP_CONF, then /etc/opentap/opentap.conf."""
    return Path(explicit or os.environ.get("OPENTAP_CONF") or DEFAULT_PATH)


def parse_listen(path: Path, key: str, value: object) -> tuple[str, int]:
    if not isinstance(value, str) or ":" not in value:
        raise ConfigError(path, key, f"must be 'HOST:PORT' (got {value!r})")
    host, _, port = value.rpartition(":")
    host = host.strip("[]")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if host != "localhost":
            raise ConfigError(path, key, f"host must be an IP address or localhost (got {host!r})") from None
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(path, key, f"port must be 1-65535 (got {port!r})")
    return host, int(port)


def is_loopback(host: str) -> bool:
    return host == "localhost" or ipaddress.ip_address(host).is_loopback


def load(path: str | os.PathLike[str] | None = None) -> Config:
    p = config_path(path)
    try:
        text = p.read_text()
    except OSError as e:
        raise ConfigError(p, "(file)", f"cannot read the config: {e.strerror}") from None
    try:
        raw = tomllib.loads(text)
        legacy = False
    except tomllib.TOMLDecodeError as e:
        from opentap import configlegacy  # here: it raises this module's ConfigError

        if not configlegacy.looks_legacy(text):
            raise ConfigError(p, "(syntax)", f"not valid TOML: {e}") from None
        raw, legacy = configlegacy.to_raw(p, text), True
    return _build(p, raw, legacy)


def number(path: Path, key: str, value: object, *, integer: bool = False, positive: bool = True) -> float:
    if isinstance(value, str):  # the original format's values are text: ASCII digits only, as on the wire
        if not re.fullmatch(r"-?[0-9]+(\.[0-9]+)?", value):
            raise ConfigError(path, key, f"must be a number (got {value!r})")
        value = float(value)
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise ConfigError(path, key, f"must be a number (got {value!r})")
    if integer and int(value) != value:
        raise ConfigError(path, key, f"must be a whole number (got {value!r})")
    if positive and value <= 0:
        raise ConfigError(path, key, f"must be greater than 0 (got {value!r})")
    return int(value) if integer else value


def _build(path: Path, raw: dict, legacy: bool) -> Config:
    unknown = sorted(set(raw) - KNOWN_KEYS)
    if unknown:
        raise ConfigError(path, unknown[0], f"unknown key (known keys: {', '.join(sorted(KNOWN_KEYS))})")
    base = path.resolve().parent
    host, port = parse_listen(path, "listen", raw.get("listen", "127.0.0.1:2020"))
    data_dir = base / str(raw.get("data_dir", "data"))
    device_name = raw.get("device_name", os.uname().nodename)
    if not isinstance(device_name, str) or not device_name:
        raise ConfigError(path, "device_name", "must be a non-empty string")
    db_url = raw.get("database_url", f"sqlite:///{base / 'opentap.db'}")
    if not isinstance(db_url, str) or not re.match(r"^(sqlite|postgresql)(\+\w+)?://", db_url):
        raise ConfigError(path, "database_url", f"must be a sqlite:/// or postgresql:// URL (got {db_url!r})")
    auth = raw.get("auth", "token")
    if auth not in ("token", "none"):
        raise ConfigError(path, "auth", f"must be 'token' or 'none' (got {auth!r})")
    cfg = Config(
        path=path, device_name=device_name, listen_host=host, listen_port=port, data_dir=data_dir,
        database_url=db_url, auth=auth, legacy_format=legacy,
        observation_points=_points(path, raw.get("observation_points", {})),
        tokens=_tokens(path, raw.get("tokens", [])),
        ssh_keys={k.name: k for k in _ssh_keys(path, raw.get("ssh_keys", []))},
    )
    for key, integer in (("retention_minutes", False), ("capture_length_limit", False),
                         ("max_concurrent_captures", True), ("disk_quota_mb", False),
                         ("capture_buffer_kib", True), ("chunk_mb", True), ("gc_interval_seconds", False),
                         ("flow_active_timeout", False), ("flow_idle_timeout", False), ("ssh_port", True),
                         ("project_max_concurrent_captures", True), ("project_disk_quota_mb", False)):
        if key in raw:
            setattr(cfg, key, number(path, key, raw[key], integer=integer))
    for key in ("tls_cert", "tls_key", "socket"):
        if key in raw:
            if not isinstance(raw[key], str) or not raw[key]:
                raise ConfigError(path, key, "must be a file path")
            setattr(cfg, key, base / raw[key])
    if (cfg.tls_cert is None) != (cfg.tls_key is None):
        raise ConfigError(path, "tls_cert" if cfg.tls_cert is None else "tls_key",
                          "tls_cert and tls_key go together: give both or neither")
    for key in ("tls_cert", "tls_key"):
        file = getattr(cfg, key)
        if file is not None and not os.access(file, os.R_OK):
            raise ConfigError(path, key, f"cannot read {file}")
    for key in ("socket_group", "data_group", "capture_user"):
        if key in raw:
            if not isinstance(raw[key], str) or not NAME_RE.match(raw[key]):
                raise ConfigError(path, key, f"must be a user or group name (got {raw[key]!r})")
            setattr(cfg, key, raw[key])
    fmt = raw.get("ethernet_default_format", cfg.ethernet_default_format)
    if fmt not in ("pcap", "csv"):
        raise ConfigError(path, "ethernet_default_format", f"must be \"pcap\" or \"csv\" (got {fmt!r})")
    cfg.ethernet_default_format = fmt
    if "export" in raw:
        try:
            cfg.export = str(exportaddr.parse(raw["export"]))
        except exportaddr.ExportError as e:
            raise ConfigError(path, "export", str(e)) from None
    check_listen(cfg)
    from opentap import confighosts, configlimits  # here: they import this module

    confighosts.apply(path, raw, cfg)
    configlimits.apply(path, raw, cfg)
    if "metrics_listen" in raw:  # unauthenticated: never beyond loopback
        cfg.metrics_listen = parse_listen(path, "metrics_listen", raw["metrics_listen"])
        if not is_loopback(cfg.metrics_listen[0]):
            raise ConfigError(path, "metrics_listen", "must be a loopback address: the metrics there need no token")
    default = raw.get("default_observation_point")
    if default is not None and default not in cfg.observation_points:
        raise ConfigError(path, "default_observation_point", f"{default!r} is not an observation point")
    cfg.default_observation_point = default or next(iter(cfg.observation_points), None)
    if "sensors" in raw:
        from opentap import configsensors  # here: it imports this module

        cfg.sensor_points = configsensors.points(path, raw["sensors"], cfg.observation_points)
    return cfg


def check_listen(cfg: Config, where: str = "listen") -> None:
    """Tokens must not cross a network in the clear: beyond loopback the API is HTTPS. The original's format is
    the exception: it has no tokens to leak, and its clients speak only plain HTTP."""
    if cfg.legacy_format or is_loopback(cfg.listen_host):
        return
    if cfg.auth == "none":
        raise ConfigError(cfg.path, "auth", "'none' is allowed only when listening on a loopback address")
    if not cfg.tls:
        raise ConfigError(cfg.path, where, f"listening on {cfg.listen_host}, beyond loopback, needs HTTPS: set "
                                           "tls_cert and tls_key (`opentap config init` makes a self-signed pair)")


def _points(path: Path, raw: object) -> dict[str, ObservationPoint]:
    if not isinstance(raw, dict):
        raise ConfigError(path, "observation_points", "must be a table of NAME = \"INTERFACE\"")
    points = {}
    for name, spec in raw.items():
        key = f"observation_points.{name}"
        if not NAME_RE.match(name):
            raise ConfigError(path, key, "names may use only letters, digits, '_', '.', '-' (1-64)")
        if isinstance(spec, str):
            spec = {"interface": spec}
        if not isinstance(spec, dict) or not isinstance(spec.get("interface"), str):
            raise ConfigError(path, key, "must be \"INTERFACE\" or {interface = \"...\", projects = [...], "
                                         "admin_only = true, ring_mb = 4096}")
        if not hostif.valid_name(spec["interface"]):
            raise ConfigError(path, key, f"not a valid interface name: {spec['interface']!r}")
        projects = spec.get("projects", [])
        if not isinstance(projects, list) or not all(isinstance(x, str) for x in projects):
            raise ConfigError(path, key + ".projects", "must be a list of project ids")
        admin_only = spec.get("admin_only", False)
        if not isinstance(admin_only, bool):
            raise ConfigError(path, key + ".admin_only", "must be true or false")
        extra = set(spec) - {"interface", "projects", "admin_only", "ring_mb"}
        if extra:
            raise ConfigError(path, f"{key}.{sorted(extra)[0]}", "unknown key")
        from opentap.configrings import ring_mb  # here: it imports this module

        ring = ring_mb(path, f"{key}.ring_mb", spec.get("ring_mb", 0))
        points[name] = ObservationPoint(name, spec["interface"], tuple(projects), admin_only, ring)
    return points


def _tables(path: Path, key: str, raw: object) -> list[tuple[str, dict]]:
    if not isinstance(raw, list):
        raise ConfigError(path, key, f"must be an array of tables ([[{key}]])")
    for i, t in enumerate(raw):
        if not isinstance(t, dict):
            raise ConfigError(path, f"{key}[{i}]", "must be a table")
    return [(f"{key}[{i}]", t) for i, t in enumerate(raw)]


def _grant(path: Path, key: str, t: dict) -> tuple[str, tuple[str, ...]]:
    """The project and roles a token or an SSH key acts as."""
    project, roles = t.get("project"), t.get("roles")
    if not isinstance(project, str) or not NAME_RE.match(project):
        raise ConfigError(path, key + ".project", "must be a project id (letters, digits, '_', '.', '-')")
    if not isinstance(roles, list) or not roles or not all(r in ROLES for r in roles):
        raise ConfigError(path, key + ".roles", f"must be a non-empty list of {', '.join(ROLES)}")
    return project, tuple(roles)


def _tokens(path: Path, raw: object) -> list[Token]:
    tokens = []
    for key, t in _tables(path, "tokens", raw):
        digest = t.get("sha256")
        if not isinstance(digest, str) or not re.fullmatch(r"[0-9a-f]{64}", digest):
            raise ConfigError(path, key + ".sha256", "must be the 64-hex-digit SHA-256 of the token")
        tokens.append(Token(digest, *_grant(path, key, t)))
    return tokens


def _ssh_keys(path: Path, raw: object) -> list[SshKey]:
    keys = []
    for key, t in _tables(path, "ssh_keys", raw):
        name = t.get("name")
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise ConfigError(path, key + ".name", "must be a name (letters, digits, '_', '.', '-')")
        keys.append(SshKey(name, *_grant(path, key, t)))
    return keys
