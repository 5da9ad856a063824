"""Tap-as-a-Service: Neutron-compatible ports, tap services and tap flows."""
