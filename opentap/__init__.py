"""OpenTap: a software-defined network tap device."""

__version__ = "0.1.0"
