"""The installer's interview, driven through a scripted console on a made-up host: defaults in brackets, bad
answers explained and asked again, --yes, an answers file, and what is written (or not, on Ctrl-C)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path

import pytest

from opentap import config, interview, interviewwrite
from opentap.interview import Asker, Host, Interface

IFACES = [Interface("lo", "unknown", "00:00:00:00:00:00", ("127.0.0.1",)),
          Interface("enp1s0", "up", "52:54:00:12:34:56", ("192.0.2.10",)),
          Interface("enp2s0", "down", "52:54:00:12:34:57", ())]


class Script:
    """A console that answers from a list and records everything said and asked."""

    def __init__(self, answers: Iterable[str]) -> None:
        self.answers, self.lines = list(answers), []

    def ask(self, prompt: str) -> str:
        self.lines.append(prompt)
        if not self.answers:
            raise EOFError
        answer = self.answers.pop(0)
        if answer == "^C":
            raise KeyboardInterrupt
        return answer

    def say(self, text: str = "") -> None:
        self.lines.append(text)


def host(port_taken: int | None = None) -> Host:
    def problem(_host: str, port: int) -> str | None:
        return f"port {port} is in use by another program on this host" if port == port_taken else None

    return Host("virgo", IFACES, lambda _p: 50_000.0, problem)


def plan(answers: list[str] | None = None, file: dict | None = None, yes: bool = False,
         h: Host | None = None) -> tuple[interview.Plan, Script]:
    console = Script(answers or [])
    asker = Asker(console, file, defaults_only=yes)
    return interview.interview(asker, h or host(), Path("/var/lib/opentap/data"), {"capture_user": "opentap"}), console


def test_enter_takes_every_default_shown_in_brackets() -> None:
    p, console = plan([""] * 12)
    assert (p.device_name, p.listen, p.tls, p.default_point) == ("virgo", "0.0.0.0:2020", "generate", "enp1s0")
    assert list(p.points) == ["enp1s0", "enp2s0"]  # every interface but lo, named after it
    assert (p.retention_minutes, p.capture_length_limit, p.disk_quota_mb, p.max_concurrent_captures) == \
        (60, 3600, 1024, 4)
    prompts = [ln for ln in console.lines if ln.endswith("]: ")]
    assert "Device name [virgo]: " in prompts and "  lo: observation point name [-]: " in prompts
    assert all("[" in p for p in prompts) and len(prompts) == 12 and not p.sensors
    assert any("52:54:00:12:34:56" in ln and "192.0.2.10" in ln and "up" in ln for ln in console.lines)


def test_a_bad_answer_is_explained_and_asked_again() -> None:
    answers = ["tap-1", "0.0.0.0:99999", "0.0.0.0:2020", "0.0.0.0:8443", "maybe", "generate",
               "webapp", "bad name!", "lab", "-", "nowhere", "lab", "sixty", "90", "", "10000000", "500", "0", "2",
               "perhaps", "yes"]
    p, console = plan(answers, h=host(port_taken=2020))
    said = "\n".join(console.lines)
    assert "port must be 1-65535" in said and "port 2020 is in use" in said
    assert "answer one of: generate, files" in said
    assert "a point name may use only letters" in said and "retention must be a whole number" in said
    assert "the quota must be a whole number from 1 to 50000" in said
    assert (p.listen, p.default_point, p.retention_minutes, p.disk_quota_mb, p.max_concurrent_captures) == \
        ("0.0.0.0:8443", "lab", 90, 500, 2)
    assert {n: i.name for n, i in p.points.items()} == {"webapp": "lo", "lab": "enp1s0"}
    assert "answer one of: yes, no" in said and p.sensors


def test_yes_takes_every_default_without_a_question() -> None:
    p, console = plan(yes=True)
    assert console.lines == [] and list(p.points) == ["enp1s0", "enp2s0"] and p.tls == "generate"


def test_answers_file_by_question_names() -> None:
    p, _ = plan(file={"device_name": "tap9", "listen": "127.0.0.1:2021", "tls": "none", "retention_minutes": 5,
                      "points": {"enp1s0": "webapp", "enp2s0": "", "lo": "local"}, "default_point": "webapp"})
    assert (p.device_name, p.tls, p.retention_minutes, p.default_point) == ("tap9", "none", 5, "webapp")
    assert {n: i.name for n, i in p.points.items()} == {"local": "lo", "webapp": "enp1s0"}


@pytest.mark.parametrize(("file", "message"), [
    ({"retention_minutes": "sixty"}, "'retention_minutes' in the answers file ('sixty')"),
    ({"colour": "blue"}, "'colour', which is not a question"),
    ({"points": {"eth9": "x"}}, "no interface 'eth9'"),
    ({"tls": "none"}, "answer one of: generate, files"),  # beyond loopback HTTPS is a must
])
def test_answers_file_mistakes_stop_the_interview(file: dict, message: str) -> None:
    with pytest.raises(interview.AnswerError, match=message.replace("(", r"\(").replace(")", r"\)")):
        plan(file=file)


def test_written_files_load_and_the_summary_says_how_to_connect(tmp_path: Path) -> None:
    p, _ = plan(yes=True)
    p.fixed.update(data_dir=str(tmp_path / "data"), database_url=f"sqlite:///{tmp_path / 'x.db'}")
    result = interviewwrite.write(p, tmp_path / "opentap.conf")
    cfg = config.load(tmp_path / "opentap.conf")
    assert cfg.tls and cfg.capture_user == "opentap" and cfg.default_observation_point == "enp1s0"
    assert set(cfg.observation_points) == {"enp1s0", "enp2s0"} and len(cfg.tokens) == 1
    token_file = tmp_path / "admin-token"
    assert token_file.read_text().strip() == result.token and stat.S_IMODE(os.stat(token_file).st_mode) == 0o600
    text = "\n".join(interviewwrite.summary(p, result))
    assert "https://192.0.2.10:2020" in text and f"sha256:{result.fingerprint}" in text
    assert f'Device("https://192.0.2.10:2020", token="{result.token}", verify="sha256:{result.fingerprint}")' in text
    assert not list(tmp_path.glob(".*.tmp"))


def test_ctrl_c_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt):
        plan(["virgo", "", "", "^C"])
    assert list(tmp_path.iterdir()) == []
