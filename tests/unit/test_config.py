"""The config file: TOML, the original format, errors that name the key, and the writer commands."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import pytest

from opentap import auth, config, hostif
from opentap.cli.main import main


def load_text(tmp_path: Path, text: str) -> config.Config:
    p = tmp_path / "opentap.conf"
    p.write_text(text)
    return config.load(p)


def test_toml_settings_and_relative_paths(tmp_path: Path) -> None:
    for name in ("tls.crt", "tls.key"):
        (tmp_path / name).write_text("x")
    cfg = load_text(tmp_path, """
device_name = "virgo"
listen = "0.0.0.0:50080"
tls_cert = "tls.crt"
tls_key = "tls.key"
data_dir = "captured"
retention_minutes = 90
capture_length_limit = 600
max_concurrent_captures = 2
disk_quota_mb = 10
default_observation_point = "webapp"
[observation_points]
webapp = "enp1s0"
lab = {interface = "eth1", projects = ["alice"]}
""")
    assert (cfg.device_name, cfg.listen_host, cfg.listen_port) == ("virgo", "0.0.0.0", 50080)
    assert cfg.data_dir == tmp_path.resolve() / "captured"
    assert cfg.database_url == f"sqlite:///{tmp_path.resolve() / 'opentap.db'}"
    assert cfg.retention_minutes == 90 and cfg.capture_length_limit == 600 and cfg.max_concurrent_captures == 2
    assert cfg.disk_quota_bytes == 10 * 1024 * 1024
    assert cfg.observation_points["webapp"].interface == "enp1s0"
    lab = cfg.observation_points["lab"]
    assert lab.usable_by("alice", False) and not lab.usable_by("bob", False) and lab.usable_by("bob", True)


def test_original_format(tmp_path: Path) -> None:
    cfg = load_text(tmp_path, """retention: 60
websrv-addr: 127.0.0.1:50080
alias: enp1s0 webapp
alias: enp2s0 storage
default-network-observationpt: enp2s0
""")
    assert cfg.legacy_format and cfg.auth == "none"
    assert cfg.retention_minutes == 60 and cfg.listen_port == 50080
    assert {n: p.interface for n, p in cfg.observation_points.items()} == {"webapp": "enp1s0", "storage": "enp2s0"}
    assert cfg.default_observation_point == "storage"  # the original names the interface, we map it to its alias


@pytest.mark.parametrize(("text", "key", "problem"), [
    ("retention_minutes = -5", "retention_minutes", "greater than 0"),
    ("retention_minutes = \"soon\"", "retention_minutes", "must be a number"),
    ("max_concurrent_captures = 1.5", "max_concurrent_captures", "whole number"),
    ("listen = \"127.0.0.1\"", "listen", "HOST:PORT"),
    ("listen = \"127.0.0.1:99999\"", "listen", "1-65535"),
    ("listen = \"example.com:80\"", "listen", "IP address"),
    ("database_url = \"mysql://x\"", "database_url", "sqlite"),
    ("auth = \"maybe\"", "auth", "'token' or 'none'"),
    ("listen = \"0.0.0.0:2020\"\nauth = \"none\"", "auth", "loopback"),
    ("listen = \"0.0.0.0:2020\"", "listen", "needs HTTPS"),
    ("tls_cert = \"a.crt\"", "tls_key", "go together"),
    ("tls_cert = \"no.crt\"\ntls_key = \"no.key\"", "tls_cert", "cannot read"),
    ("[observation_points]\nlo = {interface = \"lo\", admin_only = 1}", "observation_points.lo.admin_only",
     "true or false"),
    ("[projects.alice]\ndisk_quota_mb = -1", "projects.alice.disk_quota_mb", "greater than 0"),
    ("[projects.alice]\ncolour = 1", "projects.alice.colour", "unknown key"),
    ("colour = 1", "colour", "unknown key"),
    ("tap_id_range = [5, 1]", "tap_id_range", "FIRST <= LAST"),
    ("tap_id_range = [0, 10]", "tap_id_range", "1 <= FIRST"),
    ("tap_id_range = 7", "tap_id_range", "[FIRST, LAST]"),
    ("taas_quota = 5", "taas_quota", "must be a table"),
    ("[taas_quota]\ntap_service = -2", "taas_quota.tap_service", "from -1 (unlimited)"),
    ("[taas_quota]\ntap_flow = 1.5", "taas_quota.tap_flow", "whole number"),
    ("[taas_quota]\ntap_flow = true", "taas_quota.tap_flow", "whole number"),
    ("[taas_quota]\nport = 3", "taas_quota.port", "unknown key"),
    ("default_observation_point = \"nope\"\n[observation_points]\nlo = \"lo\"", "default_observation_point",
     "not an observation point"),
    ("[observation_points]\n\"a/b\" = \"lo\"", "observation_points.a/b", "letters, digits"),
    ("[observation_points]\nx = \"../../etc\"", "observation_points.x", "not a valid interface"),
    ("[[tokens]]\nsha256 = \"abc\"\nproject = \"p\"\nroles = [\"admin\"]", "tokens[0].sha256", "SHA-256"),
    ("[[tokens]]\nsha256 = \"" + "a" * 64 + "\"\nproject = \"p\"\nroles = [\"god\"]", "tokens[0].roles",
     "admin, member, reader"),
    ("this is = not toml", "(syntax)", "not valid TOML"),
])
def test_bad_config_names_key(tmp_path: Path, text: str, key: str, problem: str) -> None:
    with pytest.raises(config.ConfigError) as e:
        load_text(tmp_path, text)
    assert e.value.key == key and problem in str(e.value) and f"'{key}'" in str(e.value)


def test_taas_quota_defaults_and_table(tmp_path: Path) -> None:
    assert load_text(tmp_path, "").taas_quota == {"tap_service": 10, "tap_flow": 100}
    cfg = load_text(tmp_path, "[taas_quota]\ntap_flow = -1")
    assert cfg.taas_quota == {"tap_service": 10, "tap_flow": -1}


def test_serve_fails_at_start_with_the_key(tmp_path: Path) -> None:
    p = tmp_path / "opentap.conf"
    p.write_text("retention_minutes = 0\n")
    out = subprocess.run([sys.executable, "-m", "opentap", "serve", "--config", str(p)], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 2 and "retention_minutes" in out.stderr and "greater than 0" in out.stderr


def test_config_path_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENTAP_CONF", raising=False)
    assert config.config_path() == Path("/etc/opentap/opentap.conf")
    monkeypatch.setenv("OPENTAP_CONF", "/x/env.conf")
    assert config.config_path() == Path("/x/env.conf")
    assert config.config_path("/y/flag.conf") == Path("/y/flag.conf")


def test_config_init_and_tokens(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "etc" / "opentap.conf"
    assert main(["config", "init", "--config", str(path)]) == 0
    cfg = config.load(path)
    ifaces = hostif.names()
    assert set(cfg.observation_points) == set(ifaces)  # one point per interface, named after it
    assert all(p.interface == n for n, p in cfg.observation_points.items())
    # lo carries the device's own API traffic: only admins may capture it
    assert cfg.observation_points["lo"].admin_only
    assert [n for n, p in cfg.observation_points.items() if p.admin_only] == ["lo"]
    assert not cfg.observation_points["lo"].usable_by("alice", admin=False)
    assert cfg.observation_points["lo"].usable_by("admin", admin=True)
    assert cfg.tls_cert is None  # loopback: plain HTTP is allowed
    assert cfg.data_dir == path.parent.resolve() / "data" and cfg.listen == "127.0.0.1:2020"
    token_file = path.parent / "admin-token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    admin = token_file.read_text().strip()
    assert admin not in path.read_text()  # only the hash is stored
    assert auth.authenticate(cfg, admin) == auth.Principal("admin", ("admin",))
    assert main(["config", "init", "--config", str(path)]) == 2  # never overwrites silently
    capsys.readouterr()

    assert main(["token", "create", "--config", str(path), "--project", "alice", "--role", "member"]) == 0
    member = capsys.readouterr().out.strip()
    assert auth.authenticate(cfg, member) == auth.Principal("alice", ("member",))  # no restart needed
    assert auth.authenticate(cfg, "wrong") is None and auth.authenticate(cfg, None) is None
    assert main(["token", "create", "--config", str(path), "--project", "../x", "--role", "member"]) == 2
