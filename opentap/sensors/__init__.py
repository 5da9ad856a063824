"""Sensor drivers: Phidgets through the Phidget22 library, numbers the kernel exposes as files (hwmon, thermal
zones, IIO), and a simulated signal. They know devices and files only; capture/sensor.py samples them on a
schedule and writes the CSV. One interface (base.py), shared open channels (hub.py), discovery (detect.py)."""
