"""The one error type of the capture side that reaches callers: their mistake, as an HTTP status and words."""

from __future__ import annotations


class RequestError(ValueError):
    """A caller's mistake (or a limit it ran into): an HTTP status and a message a person can act on."""

    def __init__(self, status: int, msg: str) -> None:
        super().__init__(msg)
        self.status, self.msg = status, msg
