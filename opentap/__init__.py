"""OpenTap: a software-defined network tap device."""

__version__ = "0.1.0"


class StartupError(RuntimeError):
    """The daemon must not start (its data directory is taken, its database unusable): one line says why."""
