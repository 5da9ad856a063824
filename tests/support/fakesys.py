"""A /sys of a host with sensors (hwmon, a thermal zone, an IIO device), for the tests of detection: this
machine has none."""

from __future__ import annotations

from pathlib import Path


def fake_sys(root: Path) -> Path:
    hw = root / "class/hwmon/hwmon0"
    hw.mkdir(parents=True)
    (hw / "name").write_text("coretemp\n")
    (hw / "temp1_input").write_text("45000\n")
    (hw / "temp1_label").write_text("Package id 0\n")
    (hw / "fan1_input").write_text("1200\n")
    (hw / "temp1_max").write_text("100000\n")  # not a reading
    zone = root / "class/thermal/thermal_zone0"
    zone.mkdir(parents=True)
    (zone / "type").write_text("x86_pkg_temp\n")
    (zone / "temp").write_text("47000\n")
    iio = root / "bus/iio/devices/iio:device0"
    iio.mkdir(parents=True)
    (iio / "name").write_text("bme280\n")
    (iio / "in_temp_input").write_text("23450\n")
    (iio / "in_humidityrelative_raw").write_text("40000\n")
    (iio / "in_humidityrelative_scale").write_text("1\n")  # IIO: raw * scale is milli-percent
    (iio / "in_pressure_input").write_text("101.325\n")
    for f in root.rglob("*"):
        if f.is_file():
            f.chmod(0o444)
    return root
