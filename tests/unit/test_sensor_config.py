"""Sensor points in the config: the keys the README documents, the errors that name them, points shared by
several sensors, projects, and the original's opentapSensorConf.csv beside a config in its format."""

from __future__ import annotations

from pathlib import Path

import pytest

from opentap import config
from opentap.configsensors import SensorSpec

SENSORS = """
[observation_points]
lo = "lo"

[sensors.rack_temp]
driver = "phidget22"
serial = 123456
port = 3
part = 1124
projects = ["lab"]

[sensors.cpu_temp]
driver = "sysfs"
path = "/sys/class/hwmon/hwmon0/temp1_input"
kind = "temperature"
scale = 0.001
offset = 0.0
unit = "°C"

[sensors.demo_motion]
driver = "simulated"
kind = "motion"

[sensors.a]
driver = "simulated"
kind = "temperature"
point = "rack1"

[sensors.b]
driver = "phidget22"
serial = 5
port = 0
part = "temperature"
point = "rack1"

[sensors.c]
driver = "phidget22"
serial = 5
port = 1
part = 1111
point = "rack1"
"""


def load_text(tmp_path: Path, text: str) -> config.Config:
    p = tmp_path / "opentap.conf"
    p.write_text(text)
    return config.load(p)


def test_the_documented_keys(tmp_path: Path) -> None:
    cfg = load_text(tmp_path, SENSORS)
    assert list(cfg.sensor_points) == ["rack_temp", "cpu_temp", "demo_motion", "rack1"]
    assert list(cfg.observation_points) == ["lo"] and cfg.default_observation_point == "lo"
    rack = cfg.sensor_points["rack_temp"]
    assert rack.sensors == (SensorSpec("rack_temp", "phidget22", "temperature", "°C", 123456, 3, "1124"),)
    assert rack.projects == ("lab",) and rack.usable_by("lab", False) and not rack.usable_by("bob", False)
    cpu = cfg.sensor_points["cpu_temp"].sensors[0]
    assert (cpu.path, cpu.kind, cpu.scale, cpu.offset, cpu.unit) == ("/sys/class/hwmon/hwmon0/temp1_input",
                                                                    "temperature", 0.001, 0.0, "°C")
    assert cfg.sensor_points["demo_motion"].simulated and not cfg.sensor_points["cpu_temp"].simulated
    # one point, three sensors, a column each in the config's order, named by kind
    assert cfg.sensor_points["rack1"].columns == ["temperature", "temperature.1", "motion"]
    assert cfg.sensor_points["rack1"].interface == "simulated+phidget22"
    assert cfg.sensor_points["rack1"].sensors[1].label == "Phidget temperature on serial 5 port 0"


def test_a_spec_survives_the_capture_options(tmp_path: Path) -> None:
    for point in load_text(tmp_path, SENSORS).sensor_points.values():
        for spec in point.sensors:
            assert SensorSpec.from_json(spec.to_json()) == spec


BAD = [
    ('[sensors.x]\ndriver = "usb"', "sensors.x.driver", "must be one of phidget22, sysfs, simulated"),
    ('[sensors.x]\ndriver = "phidget22"\nserial = 1\nport = 0', "sensors.x.part", "is required"),
    ('[sensors.x]\ndriver = "phidget22"\nserial = 1\nport = 0\npart = 1125', "sensors.x.part", "must be one of 1102"),
    ('[sensors.x]\ndriver = "phidget22"\nserial = 0\nport = 0\npart = 1124', "sensors.x.serial", "whole number"),
    ('[sensors.x]\ndriver = "phidget22"\nserial = 1\nport = 99\npart = 1124', "sensors.x.port", "from 0 to 63"),
    ('[sensors.x]\ndriver = "phidget22"\nserial = 1\nport = 0\npart = 1124\npath = "/x"', "sensors.x.path",
     "unknown key for a phidget22 sensor"),
    ('[sensors.x]\ndriver = "sysfs"\npath = "temp1_input"\nkind = "t"', "sensors.x.path", "absolute"),
    ('[sensors.x]\ndriver = "sysfs"\npath = "/x"', "sensors.x.kind", "is required"),
    ('[sensors.x]\ndriver = "sysfs"\npath = "/x"\nkind = "time"', "sensors.x.kind", "'time' is the CSV's"),
    ('[sensors.x]\ndriver = "sysfs"\npath = "/x"\nkind = "a,b"', "sensors.x.kind", "a name like"),
    ('[sensors.x]\ndriver = "sysfs"\npath = "/x"\nkind = "t"\nscale = "2"', "sensors.x.scale", "finite number"),
    ('[sensors.x]\ndriver = "simulated"\nkind = "t"\npoint = "lo"', "sensors.x.point", "already a network"),
    ('[sensors.lo]\ndriver = "simulated"\nkind = "t"', "sensors.lo", "already a network"),
    ('[sensors.x]\ndriver = "simulated"\nkind = "t"\npoint = "p"\nprojects = ["a"]\n'
     '[sensors.y]\ndriver = "simulated"\nkind = "t"\npoint = "p"\nprojects = ["b"]', "sensors.y.projects",
     "share its projects"),
    ('sensors = 3', "sensors", "must be a table"),
]


@pytest.mark.parametrize(("text", "key", "fragment"), BAD)
def test_errors_name_the_key(tmp_path: Path, text: str, key: str, fragment: str) -> None:
    with pytest.raises(config.ConfigError) as e:
        points = '[observation_points]\nlo = "lo"\n'
        load_text(tmp_path, text + "\n" + points if text.startswith("sensors =") else points + text)
    assert e.value.key == key and fragment in str(e.value), str(e.value)


def test_the_originals_sensor_csv_beside_a_config_in_its_format(tmp_path: Path) -> None:
    (tmp_path / "opentapSensorConf.csv").write_text(
        "interface_serial_num,sensor_port,sensor_id,sensor_type,observation_pt_name\n"
        "123456,0,1124,Temperature,rack1\n123456,1,1111,Motion,rack1\n123456,2,1104,Vibration,door\n")
    cfg = load_text(tmp_path, "retention: 60\nwebsrv-addr: 127.0.0.1:50080\nalias: lo loop\n")
    assert cfg.legacy_format and list(cfg.sensor_points) == ["rack1", "door"]
    assert cfg.sensor_points["rack1"].columns == ["temperature", "motion"]
    assert cfg.sensor_points["door"].sensors[0] == SensorSpec("door.123456.2", "phidget22", "vibration", "", 123456,
                                                              2, "1104")
    (tmp_path / "opentapSensorConf.csv").write_text("serial,port\n1,2\n")
    with pytest.raises(config.ConfigError, match="interface_serial_num,sensor_port"):
        config.load(tmp_path / "opentap.conf")
    (tmp_path / "opentapSensorConf.csv").unlink()
    assert load_text(tmp_path, "retention: 60\nalias: lo loop\n").sensor_points == {}
