"""Tables. Captures are rows with a state machine, so a restarted daemon knows what to resume."""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Float, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

# scheduled -> running -> complete | truncated | failed | cancelled
ACTIVE_STATES = ("scheduled", "running")
FINAL_STATES = ("complete", "truncated", "failed", "cancelled")


class Base(DeclarativeBase):
    pass


class Capture(Base):
    """A capture is named by its project and id: ids are unique per project, so that "already used" tells one
    project nothing about another's."""

    __tablename__ = "captures"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    type: Mapped[str] = mapped_column(String(32))
    project_id: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)
    observation_point: Mapped[str] = mapped_column(String(64))
    interface: Mapped[str] = mapped_column(String(64))
    start: Mapped[float] = mapped_column(Float)
    stop: Mapped[float] = mapped_column(Float)
    state: Mapped[str] = mapped_column(String(16), index=True, default="scheduled")
    options: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[float] = mapped_column(Float)
    started_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    finished_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    packets: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    drops_kernel: Mapped[int] = mapped_column(BigInteger, default=0)
    drops_interface: Mapped[int] = mapped_column(BigInteger, default=0)
    data_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    segments: Mapped[int] = mapped_column(Integer, default=0)  # driver sessions: >1 after a resume
    child_pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    stats: Mapped[dict] = mapped_column(JSON, default=dict)  # type-specific counts (flows, non-IP frames, ...)


def find(s: Session, project: str, capture_id: str) -> Capture | None:
    return s.get(Capture, {"project_id": project, "id": capture_id})
