"""The flow-meter oracles themselves (tests/support/oracles.py): the pure-Python reader against tshark, and the
softflowd -> nfcapd -> nfdump pipeline against its documented model. (The generator, builders and reader on
their own: tests/unit/test_pcapgen.py.)"""

from __future__ import annotations

import ipaddress
import time
from collections import defaultdict
from pathlib import Path

import pytest

from ..support import frames as F
from ..support.oracles import (
    NFDUMP_CSV_HEADER,
    Packet,
    have,
    iter_packets,
    nfdump_proto,
    own_truth,
    per_key,
    softflowd_differences,
    softflowd_expected,
    softflowd_key,
    softflowd_pipeline,
    tshark_truth,
)
from ..support.pcapgen import GenStats, generate

SMALL, ACTIVE, IDLE = 5000, 60.0, 16.0


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, GenStats, list[Packet]]:
    path = tmp_path_factory.mktemp("gen") / "small.pcap"
    stats = generate(path, SMALL, seed=7, active_timeout=ACTIVE, idle_gap=IDLE)
    return path, stats, list(iter_packets(path))


def test_builders_are_read_alike_by_tshark(tmp_path: Path) -> None:
    """The frames test_builders_and_reader decodes (tests/unit/test_pcapgen.py), dissected by tshark."""
    if reason := have("tshark"):
        pytest.skip(reason)
    path = tmp_path / "b.pcap"
    F.write_pcap(path, [(1_700_000_000 + i / 10, fr) for i, fr in enumerate(F.sample_frames())])
    assert own_truth(path) == tshark_truth(path)


def test_own_truth_equals_tshark(small: tuple[Path, GenStats, list[Packet]]) -> None:
    if reason := have("tshark"):
        pytest.skip(reason)
    path = small[0]
    own = own_truth(path)
    assert len(own) > 200
    assert own == tshark_truth(path)
    assert own_truth(path, icmp_type_in_dp=True) == tshark_truth(path, icmp_type_in_dp=True)


def test_softflowd_pipeline(small: tuple[Path, GenStats, list[Packet]], tmp_path: Path) -> None:
    if reason := have("softflowd", "nfcapd", "nfdump"):
        pytest.skip(reason)
    path, st, pkts = small
    truth = own_truth(path, icmp_type_in_dp=True)
    recs = softflowd_pipeline(path, tmp_path, flows_hint=len(truth), active=int(ACTIVE), idle=int(IDLE))
    assert recs.lost == 0 and recs.nfcapd["sequence_errors"] == 0 and recs.kernel_drops == 0, recs.nfcapd
    seen = [p for p in pkts if softflowd_key(p) is not None]
    assert recs.softflowd["processed"] == len(seen) == st.packets - sum(p.af == 0 or len(p.tags) > 1 for p in pkts)
    assert recs.softflowd["fragments"] == sum(p.frag > 0 for p in seen)
    got = per_key(recs)
    assert got == softflowd_expected(path)  # the documented model, exactly
    assert len(got) == len(recs), "reading a file, softflowd splits no flow here (one -m batch; no idle expiry)"
    # Against the truth: plain traffic (untagged or one 802.1Q tag, no fragment) has the same packets per
    # one-way key; softflowd's bytes are the IP bytes plus the Ethernet padding of the key's frames.
    odd, pad = softflowd_differences(pkts)
    plain = [k for k in truth if k not in odd]
    assert len(plain) > 200 and sum(pad[k] for k in plain) > 0
    assert all(got[k] == (truth[k][0], truth[k][1] + pad[k]) for k in plain)
    assert not any(p.tags[:1] == (F.TPID_QINQ,) and p.key in got for p in pkts if p.key)  # QinQ unseen
    assert all(k[3] == 0 for k in got if k[4] == F.ICMPV6)  # ICMPv6 type/code not shown in dp
    v6_later = {(p.key[0], p.key[1]) for p in seen if p.af == 6 and p.frag == 2}
    assert v6_later and all((sa, da, 0, 0, 0) in got for sa, da in v6_later)
    assert sum(n for n, _ in got.values()) == len(seen)
    assert sum(b for _, b in got.values()) == sum(p.wirelen - p.l2len for p in seen)
    check_nfdump_formats(recs, seen)


def check_nfdump_formats(recs: list[dict], seen: list[Packet]) -> None:
    """The CSV as nfdump 1.7.1 prints softflowd's v9 records (what our meter's CSV must look like)."""
    header = NFDUMP_CSV_HEADER.split(",")
    zero = ("fwd", "stos", "opkt", "obyt", "in", "out", "sas", "das", "smk", "dmk", "dtos", "svln", "dvln")
    zeros = dict.fromkeys(zero, "0")
    zeros |= dict.fromkeys(("nh", "nhb"), "0.0.0.0") | dict.fromkeys(("cl", "sl", "al"), "    0.000")
    zeros |= dict.fromkeys(("ismc", "odmc", "idmc", "osmc"), "00:00:00:00:00:00")
    zeros |= {f"mpls{i}": "0-0-0" for i in range(1, 11)} | {"ra": "127.0.0.1", "eng": "0/0", "exid": "1"}
    flags: dict[tuple, int] = defaultdict(int)
    span: dict[tuple, list[int]] = {}  # softflowd's bidirectional flow -> [first ms, last ms]

    def two_way(k: tuple) -> tuple:  # ICMPv6 echo: dp 0 shown, but requests and replies are two flows
        return (k[0], k[1], k[4]) if k[4] == F.ICMPV6 else (frozenset((k[:3:2], k[1:4:2])), k[4])

    for p in seen:
        k, _ = softflowd_key(p) or ((), 0)
        flags[k] |= p.tcp_flags
        ms = p.ts_us // 1000
        span.setdefault(two_way(k), [ms, ms])[1] = ms
    rec_flags: dict[tuple, int] = defaultdict(int)
    for r in recs:
        assert list(r)[: len(header)] == header
        assert {c: r[c] for c in zeros} == zeros
        assert r["ts"] == time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(int(r["first_ms"]) // 1000))
        assert r["te"] == time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(int(r["last_ms"]) // 1000))
        assert r["td"] == f"{(int(r['last_ms']) - int(r['first_ms'])) / 1000:.3f}"
        assert r["pr"] == nfdump_proto(int(r["proto"]))
        sa, da = ipaddress.ip_address(r["sa"]), ipaddress.ip_address(r["da"])
        assert r["dir"] == ("1" if sa.packed > da.packed else "0")
        k = (str(r["sa"]), str(r["da"]), int(r["sp"]), int(r["dp"]), int(r["proto"]))
        # Times are those of softflowd's two-way flow: a reply's record starts at the request.
        assert [r["first_ms"], r["last_ms"]] == span[two_way(k)]
        f = str(r["flg"])
        assert len(f) == 8 and all(ch in (".", name) for ch, name in zip(f, "CEUAPRSF", strict=True))
        rec_flags[k] |= sum(1 << (7 - i) for i, ch in enumerate(f) if ch != ".")
    assert {k: v for k, v in rec_flags.items() if v} == {k: v for k, v in flags.items() if v}
