"""The interview's sensors question: `config init --interactive` names this host's sensors into the config it has
just written, with the questions of `opentap sensors detect --write` (a fake /sys: this machine has none)."""

from __future__ import annotations

from pathlib import Path

import pytest

from opentap import config
from opentap.cli.main import main
from opentap.sensors import phidget
from tests.support.fakesys import fake_sys


def init(tmp_path: Path, *extra: str) -> list[str]:
    return ["config", "init", "--interactive", "--config", str(tmp_path / "etc" / "opentap.conf"),
            "--data-dir", str(tmp_path / "data"), "--sysfs-root", str(fake_sys(tmp_path / "sys")), *extra]


def test_unattended_yes_names_the_hosts_sensors_and_leaves_phidgets_to_a_person(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    found = [phidget.Found(123456, "PhidgetInterfaceKit 8/8/8", "PhidgetVoltageRatioInput", 3, -1, False)]
    monkeypatch.setattr(phidget, "attached", lambda _s: (found, None))  # no USB here: what the Manager would list
    answers = tmp_path / "answers.toml"
    answers.write_text('tls = "none"\nlisten = "127.0.0.1:2020"\nsensors = "yes"\n')
    (tmp_path / "etc").mkdir()
    assert main(init(tmp_path, "--answers", str(answers))) == 0
    out = capsys.readouterr().out
    assert "opentap sensors detect --write" in out and "added 6 sensors" in out
    cfg = config.load(tmp_path / "etc" / "opentap.conf")
    assert "x86_pkg_temp_thermal_zone0" in cfg.sensor_points and len(cfg.sensor_points) == 6
    assert not any(s.driver == "phidget22" for p in cfg.sensor_points.values() for s in p.sensors)


def test_interactive_names_a_phidget_and_skips_the_rest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    found = [phidget.Found(123456, "PhidgetInterfaceKit 8/8/8", "PhidgetVoltageRatioInput", 3, -1, False)]
    monkeypatch.setattr(phidget, "attached", lambda _s: (found, None))

    def answer(prompt: str) -> str:
        if prompt.startswith("Listen on"):
            return "127.0.0.1:2020"
        if prompt.startswith("TLS"):
            return "none"
        if prompt.startswith("Look for sensors"):
            return "yes"
        if prompt.startswith("Part number"):
            return "1104"
        if "serial 123456" in prompt:
            return "rack_vibration"
        return "-" if prompt.startswith("Name for") else ""  # every host sensor skipped; defaults elsewhere

    monkeypatch.setattr("builtins.input", answer)
    (tmp_path / "etc").mkdir()
    assert main(init(tmp_path)) == 0
    cfg = config.load(tmp_path / "etc" / "opentap.conf")
    assert list(cfg.sensor_points) == ["rack_vibration"]
    sensor = cfg.sensor_points["rack_vibration"].sensors[0]
    assert (sensor.driver, sensor.serial, sensor.port, sensor.part, sensor.kind) == (
        "phidget22", 123456, 3, "1104", "vibration")
    assert "added 1 sensor to" in capsys.readouterr().out
