"""The Phidget driver against the real Phidget22 library on a machine without Phidgets (the library loads,
discovery finds nothing, a channel never attaches, the part numbers map to the library's own sensor types), and
`opentap sensors detect` on a made-up /sys."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from opentap import config
from opentap.cli.main import main
from opentap.configsensors import PARTS
from opentap.sensors import detect, phidget
from tests.support.fakesys import fake_sys

Phidget22 = pytest.importorskip("Phidget22", reason="the Phidget22 package (the test extra installs it)")


def test_the_library_loads_and_finds_no_phidgets() -> None:
    lib, why = phidget.library()
    assert why is None and lib is not None and lib.version.startswith("Phidget22 - Version 1.")
    started = time.monotonic()
    found, why = phidget.attached(0.3)
    assert (found, why) == ([], None) and time.monotonic() - started < 2


def test_part_numbers_map_to_the_librarys_sensor_types() -> None:
    from Phidget22.Devices.TemperatureSensor import TemperatureSensor
    from Phidget22.VoltageRatioSensorType import VoltageRatioSensorType

    assert set(phidget.SENSOR_TYPES) == set(PARTS) - {"temperature"}
    for part, member in phidget.SENSOR_TYPES.items():
        value = getattr(VoltageRatioSensorType, member)
        # the library numbers a part's type part * 10 (+ a variant), and names it after the part
        assert value // 10 == int(part) and VoltageRatioSensorType.getName(value) == member, part
    temperature = phidget.PhidgetSource(1, 0, "temperature")
    temperature.open()
    try:
        assert all(isinstance(ch, TemperatureSensor) for ch in temperature._candidates)
    finally:
        temperature.close()


def test_a_channel_without_hardware_never_attaches() -> None:
    source = phidget.PhidgetSource(123456, 3, "1124")
    source.open()  # returns at once; the library looks for it in the background
    try:
        assert len(source._candidates) == 2  # an InterfaceKit's channel 3, a VINT hub's port 3
        time.sleep(0.3)
        assert not source.ready() and source.read(0) is None and source.warnings(10) == []
        assert source.not_ready() == "Phidget 1124 on serial 123456 port 3 not attached within 5 s"
    finally:
        source.close()


def test_detect_reads_hwmon_thermal_and_iio(tmp_path: Path) -> None:
    found = {(h.source, h.what): h for h in detect.host_sensors(fake_sys(tmp_path / "sys"))}
    assert set(found) == {("hwmon", "Package id 0"), ("hwmon", "fan1"), ("thermal", "thermal_zone0"),
                          ("iio", "temp"), ("iio", "humidityrelative"), ("iio", "pressure")}
    assert found[("hwmon", "Package id 0")].value == 45.0 and found[("hwmon", "fan1")].unit == "RPM"
    assert found[("thermal", "thermal_zone0")].value == 47.0
    assert found[("iio", "temp")].value == 23.45 and found[("iio", "pressure")].value == 101.325
    humidity = found[("iio", "humidityrelative")]
    assert humidity.value == 40.0 and humidity.kind == "humidity"
    assert humidity.table() == {"driver": "sysfs", "path": humidity.path, "kind": "humidity", "scale": 0.001,
                                "unit": "%"}


def test_detect_write_names_sensors_into_the_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    root = fake_sys(tmp_path / "sys")
    conf = tmp_path / "opentap.conf"
    conf.write_text('[observation_points]\nlo = "lo"\n')
    found = [phidget.Found(123456, "PhidgetInterfaceKit 8/8/8", "PhidgetVoltageRatioInput", 3, -1, False)]
    monkeypatch.setattr(phidget, "attached", lambda _s: (found, None))
    temp_answers = iter(["lo", "cpu"])  # the first is taken: asked again

    def answer(prompt: str) -> str:
        if prompt.startswith("Part number"):
            return "1124"
        if "serial 123456" in prompt:
            return "rack_temp"
        if "Package id 0" in prompt:
            return next(temp_answers)
        return "" if "thermal_zone0" in prompt else "-"  # the suggested name, or skipped

    monkeypatch.setattr("builtins.input", answer)
    assert main(["sensors", "detect", "--write", "--config", str(conf), "--sysfs-root", str(root)]) == 0
    out = capsys.readouterr().out
    assert "123456" in out and "Package id 0" in out and "already a sensor or observation point" in out
    cfg = config.load(conf)
    assert list(cfg.sensor_points) == ["rack_temp", "cpu", "x86_pkg_temp_thermal_zone0"]
    rack = cfg.sensor_points["rack_temp"].sensors[0]
    assert (rack.driver, rack.serial, rack.port, rack.part, rack.kind) == ("phidget22", 123456, 3, "1124",
                                                                          "temperature")
    cpu = cfg.sensor_points["cpu"].sensors[0]
    assert (cpu.path, cpu.scale, cpu.unit) == (str(root / "class/hwmon/hwmon0/temp1_input"), 0.001, "°C")


def test_detect_write_to_the_originals_csv_and_without_answers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    conf = tmp_path / "opentap.conf"
    conf.write_text("retention: 60\nalias: lo loop\n")
    found = [phidget.Found(9, "PhidgetInterfaceKit 8/8/8", "PhidgetVoltageRatioInput", 1, -1, False)]
    monkeypatch.setattr(phidget, "attached", lambda _s: (found, None))
    monkeypatch.setattr("builtins.input", lambda prompt: "1111" if prompt.startswith("Part") else
                        "door" if "serial 9" in prompt else "-")
    main(["sensors", "detect", "--write", "--config", str(conf), "--sysfs-root", str(fake_sys(tmp_path / "s"))])
    assert (tmp_path / "opentapSensorConf.csv").read_text() == (
        "interface_serial_num,sensor_port,sensor_id,sensor_type,observation_pt_name\n9,1,1111,motion,door\n")
    assert config.load(conf).sensor_points["door"].columns == ["motion"]

    def no_terminal(_prompt: str) -> str:
        raise EOFError

    monkeypatch.setattr("builtins.input", no_terminal)
    assert main(["sensors", "detect", "--write", "--config", str(conf), "--sysfs-root", str(tmp_path / "none")]) == 0
    assert "the config is unchanged" in capsys.readouterr().out
