"""Flow export (opentap/flows/export.py, ipfix.py, exportaddr.py): collector addresses, the config's default and a
capture's option (admins only), and the messages on the wire: templates first and refreshed over UDP, sizes,
sequence numbers as each RFC counts them, losses counted. The collectors themselves: tests/system/test_export.py."""

from __future__ import annotations

import socket
import struct
import time
from pathlib import Path

import pytest

from opentap import config, exportaddr
from opentap.auth import Principal
from opentap.capture import plan
from opentap.capture.errors import RequestError
from opentap.flows import export, ipfix
from opentap.flows.meter import FlowMeter, Flows
from opentap.flows.pipeline import meter_files

from ..support.configs import write_config
from ..support.pcapgen import generate

ADMIN, MEMBER = Principal("admin", ("admin",)), Principal("alice", ("member",))


@pytest.mark.parametrize(("url", "expected"), [
    ("ipfix://198.18.0.9", "ipfix://198.18.0.9:4739"),
    ("ipfix+udp://collector.example:9995", "ipfix://collector.example:9995"),
    ("ipfix+tcp://[2001:db8::9]:4739", "ipfix+tcp://[2001:db8::9]:4739"),
    ("netflow9://198.18.0.9", "netflow9://198.18.0.9:2055"),
])
def test_collector_addresses(url: str, expected: str) -> None:
    assert str(exportaddr.parse(url)) == expected


@pytest.mark.parametrize(("url", "what"), [
    ("udp://198.18.0.9:2055", "unknown export scheme"), ("netflow9+tcp://h:1", "UDP only"),
    ("ipfix://h:99999", "bad port"), ("ipfix://h:1/path", "nothing more"), ("ipfix://user@h:1", "nothing more"),
    ("ipfix://", "nothing more"), ("ipfix://h :1", "not a collector address"), (42, "not a collector address"),
])
def test_bad_collector_addresses(url: object, what: str) -> None:
    with pytest.raises(exportaddr.ExportError, match=what):
        exportaddr.parse(url)


def test_the_config_names_a_default_collector(tmp_path: Path) -> None:
    cfg = config.load(write_config(tmp_path, export="ipfix+tcp://198.18.0.9"))
    assert cfg.export == "ipfix+tcp://198.18.0.9:4739"
    with pytest.raises(config.ConfigError, match="key 'export': unknown export scheme"):
        config.load(write_config(tmp_path, export="sflow://198.18.0.9"))


def test_only_admins_choose_a_collector(tmp_path: Path) -> None:
    """A member could otherwise make the device send their project's flows to any host it can reach; the config's
    default (the operator's collector) applies to every netflow capture, and an admin may turn it off for one."""
    cfg = config.load(write_config(tmp_path, export="netflow9://198.18.0.9:2055"))
    now = time.time()
    window = {"start": now + 10, "stop": now + 20, "observationpt": "lo"}
    with pytest.raises(RequestError) as e:
        plan.check(cfg, MEMBER, "netflow", {**window, "export": "ipfix://198.18.0.66"}, now=now)
    assert e.value.status == 403
    assert plan.check(cfg, MEMBER, "netflow", window, now=now).options["export"] == "netflow9://198.18.0.9:2055"
    mine = plan.check(cfg, ADMIN, "netflow", {**window, "export": "ipfix+tcp://198.18.0.7:4739"}, now=now)
    assert mine.options["export"] == "ipfix+tcp://198.18.0.7:4739"
    assert "export" not in plan.check(cfg, ADMIN, "netflow", {**window, "export": "none"}, now=now).options
    for bad, status in ((("netflow", "ipfix://"), 400), (("ethernet", "ipfix://198.18.0.9"), 400)):
        with pytest.raises(RequestError) as e:
            plan.check(cfg, ADMIN, bad[0], {**window, "export": bad[1]}, now=now)
        assert e.value.status == status
    assert "export" not in plan.check(cfg, ADMIN, "ethernet", window, now=now).options


@pytest.fixture(scope="module")
def flows(tmp_path_factory: pytest.TempPathFactory) -> Flows:
    path = tmp_path_factory.mktemp("export") / "mix.pcap"
    generate(path, 6000, seed=11)
    return Flows.concat(list(meter_files([path], FlowMeter())))


def parse_ipfix(message: bytes) -> tuple[int, int, list[int], int]:
    """(sequence, records, set ids, length) of an IPFIX message, read by the RFC, not by our encoder."""
    version, length, _time, sequence, _domain = struct.unpack_from("!HHIII", message)
    assert version == 10 and length == len(message)
    at, sets, records = 16, [], 0
    while at < length:
        set_id, set_len = struct.unpack_from("!HH", message, at)
        sets.append(set_id)
        if set_id >= 256:
            records += (set_len - 4) // ipfix.RECORD[set_id].size
        at += set_len
    assert at == length
    return sequence, records, sets, length


def test_ipfix_messages_templates_and_sequence_numbers(flows: Flows) -> None:
    enc = ipfix.Encoder("ipfix")
    records = enc.records(flows)
    at, expected_sequence, messages = 0, 0, []
    while at < len(records):
        message, taken = enc.message(records, at, export.UDP_MESSAGE, with_templates=at == 0)
        sequence, count, sets, length = parse_ipfix(message)
        assert sequence == expected_sequence and count == taken and length <= export.UDP_MESSAGE
        expected_sequence += taken
        at += taken
        messages.append(sets)
    assert messages[0][0] == 2 and all(2 not in sets for sets in messages[1:])
    assert expected_sequence == len(flows) > 300 and {s for sets in messages for s in sets} == {2, 256, 257}


def test_netflow9_counts_messages_and_records(flows: Flows) -> None:
    enc = ipfix.Encoder("netflow9")
    records = enc.records(flows)
    message, taken = enc.message(records, 0, export.UDP_MESSAGE, with_templates=True)
    version, count, _uptime, _secs, sequence, _source = struct.unpack_from("!HHIIII", message)
    assert (version, count, sequence) == (9, taken + 2, 0)  # two template records, then the data records
    at = 20
    while at < len(message):
        _id, set_len = struct.unpack_from("!HH", message, at)
        assert set_len % 4 == 0
        at += set_len
    second, _ = enc.message(records, taken, export.UDP_MESSAGE, with_templates=False)
    assert struct.unpack_from("!I", second, 12)[0] == 1


def receiver() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(2)
    return sock


def test_udp_export_refreshes_templates_and_counts_every_record(flows: Flows, monkeypatch) -> None:
    monkeypatch.setattr(export, "TEMPLATE_EVERY", 10)
    with receiver() as sock:
        exporter = export.Exporter.open(f"ipfix://127.0.0.1:{sock.getsockname()[1]}")
        exporter.send(flows)
        exporter.close()
        got = [parse_ipfix(sock.recv(65536)) for _ in range(exporter.messages)]
    assert exporter.records == sum(g[1] for g in got) == len(flows) and exporter.lost == 0
    with_templates = [i for i, g in enumerate(got) if 2 in g[2]]
    assert with_templates == list(range(0, len(got), 10))  # first, then every TEMPLATE_EVERY messages
    assert [g[0] for g in got] == [sum(g[1] for g in got[:i]) for i in range(len(got))]


def test_a_collector_that_is_not_there_is_counted_not_raised(flows: Flows) -> None:
    with receiver() as sock:
        port = sock.getsockname()[1]
    exporter = export.Exporter.open(f"netflow9://127.0.0.1:{port}")  # nobody listens: ICMP port unreachable
    exporter.send(flows)
    exporter.send(flows)
    assert exporter.lost > 0 and exporter.errors > 0 and exporter.records + exporter.lost == 2 * len(flows)
    with pytest.raises(export.ExportError, match="cannot reach the collector"):
        export.Exporter.open(f"ipfix+tcp://127.0.0.1:{port}")
