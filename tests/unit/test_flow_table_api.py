"""GET /captures/{id}/flows and /flows/summary: a netflow capture's records paged, sorted and filtered by the
device, and at a glance, for every role and project; checked against a plain reading of the same CSV."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from opentap.api import fastparse
from opentap.api.flowtable import FlowIndex

from ..support.apicalls import headers
from ..support.flowrecords import generated, plant

ROLES = {"tok-admin": 200, "tok-alice": 200, "tok-alice-reader": 200, "tok-bob": 404, None: 401}


@pytest.fixture(scope="module")
def records(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """~4,000 records from 20,000 packets of realistic traffic (IPv4 and IPv6, TCP, UDP, ICMP, fragments)."""
    return generated(tmp_path_factory.mktemp("flows"), 20_000, seed=3)


def rows_of(path: Path) -> list[dict[str, str]]:
    with open(path) as f:
        return list(csv.DictReader(f))


@pytest.fixture
def api(make_client, records: Path):  # noqa: ANN001, ANN201
    client = make_client()
    dev = client.app.state.device
    plant(dev.sessions, dev.cfg.data_dir, "alice", "nf1", records)
    plant(dev.sessions, dev.cfg.data_dir, "alice", "ls1", None, capture_type="linkstats")
    plant(dev.sessions, dev.cfg.data_dir, "alice", "later", None, state="scheduled", start=4_000_000_000)
    return client


@pytest.mark.parametrize("path", ["/captures/nf1/flows", "/captures/nf1/flows/summary"])
def test_every_role_and_project(api, path: str) -> None:  # noqa: ANN001
    for token, status in ROLES.items():
        r = api.get(path, headers=headers(token) if token else {})
        assert r.status_code == status, (token, r.text)
        if status != 200:
            assert r.json()["status"] == "error" and r.json()["msg"], r.text
    assert api.get(path, params={"project": "alice"}, headers=headers("tok-bob")).status_code == 404
    assert api.get(path, params={"project": "alice"}, headers=headers()).status_code == 200


def test_only_a_started_netflow_capture_has_records(api) -> None:  # noqa: ANN001
    r = api.get("/captures/ls1/flows", headers=headers("tok-alice"))
    assert r.status_code == 400 and "only netflow captures" in r.json()["msg"]
    r = api.get("/captures/later/flows/summary", headers=headers("tok-alice"))
    assert r.status_code == 409 and "has not started" in r.json()["msg"]
    for bad in ({"sort": "nope"}, {"order": "up"}, {"limit": "0"}, {"limit": "1001"}, {"port": "70000"},
                {"offset": "-1"}, {"since": "1e9"}, {"top": "101"}, {"limit": "1_0"}):
        r = api.get("/captures/nf1/flows" + ("/summary" if "top" in bad else ""), params=bad, headers=headers())
        assert r.status_code == 400 and r.json()["msg"], (bad, r.text)


@pytest.mark.parametrize(("column", "order"), [("ibyt", "desc"), ("ts", "asc"), ("sa", "asc"), ("dp", "desc"),
                                               ("pr", "asc"), ("td", "desc")])
def test_pages_are_the_sorted_records(api, records: Path, column: str, order: str) -> None:  # noqa: ANN001
    rows = rows_of(records)
    numeric = column in ("ibyt", "dp", "td")

    def key(r: dict[str, str]) -> object:
        if column == "sa":
            return fastparse_sort_key(r["sa"])
        return float(r[column]) if numeric else r[column].strip().lower()

    expected = sorted(range(len(rows)), key=lambda i: key(rows[i]), reverse=order == "desc")
    # ties keep file order in either direction (sorted(reverse=True) keeps it too); first pages take the
    # device's partial sort, a last page its full one
    last = len(rows) - 100
    for offset in (0, 100, 200, last):
        page = api.get("/captures/nf1/flows", params={"sort": column, "order": order, "offset": offset, "limit": 100},
                       headers=headers("tok-alice")).json()
        assert page["records"] == page["matched"] == len(rows)
        got = [(r[0], r[3], r[4], r[5], r[6], r[11]) for r in page["rows"]]
        want = [(rows[i]["ts"], rows[i]["sa"], rows[i]["da"], int(rows[i]["sp"]), int(rows[i]["dp"]),
                 int(rows[i]["ibyt"])) for i in expected[offset:offset + 100]]
        assert got == want, (column, order, offset)


def fastparse_sort_key(address: str) -> tuple:
    from opentap.api.flowquery import _address_sort

    return _address_sort(address)


def test_filters_and_summary_agree_with_the_csv(api, records: Path) -> None:  # noqa: ANN001
    rows = rows_of(records)
    by_source = Counter()
    for r in rows:
        by_source[r["sa"]] += int(r["ibyt"])
    top, top_bytes = by_source.most_common(1)[0]
    s = api.get("/captures/nf1/flows/summary", headers=headers("tok-alice-reader")).json()
    assert s["talkers"][0] == {"address": top, "bytes": top_bytes, "packets": sum(
        int(r["ipkt"]) for r in rows if r["sa"] == top), "flows": sum(r["sa"] == top for r in rows)}
    assert s["matched"] == len(rows) and s["bytes"] == sum(int(r["ibyt"]) for r in rows)
    assert {p["protocol"] for p in s["protocols"]} == {r["pr"].strip() for r in rows}
    assert sum(map(sum, s["timeline"]["protocols"].values())) == s["bytes"]  # every protocol fits in the top 10
    mine = [r for r in rows if top in (r["sa"], r["da"]) and r["pr"].strip() in ("TCP", "UDP")]
    page = api.get("/captures/nf1/flows", params={"host": top, "pr": "tcp", "limit": 1000},
                   headers=headers("tok-alice")).json()
    assert page["matched"] == sum(r["pr"].strip() == "TCP" for r in mine)
    assert all(top in (r[3], r[4]) and r[7] == "TCP" for r in page["rows"])
    port = int(rows[0]["dp"])
    page = api.get("/captures/nf1/flows", params={"port": port, "limit": 1}, headers=headers()).json()
    assert page["matched"] == sum(port in (int(r["sp"]), int(r["dp"])) for r in rows)
    assert api.get("/captures/nf1/flows", params={"host": "192.0.2.99"}, headers=headers()).json()["matched"] == 0


def test_the_fast_parser_reads_what_the_line_parser_reads(records: Path) -> None:
    data = records.read_bytes()
    fast = FlowIndex(0)
    fast.extend(records)
    slow = FlowIndex(0)
    slow._pieces = {k: [v] for k, v in slow.cols.items()}
    slow._parse(data, 0)
    slow.cols = {k: np.concatenate(v) for k, v in slow._pieces.items()}
    assert len(fast) == len(slow) == len(rows_of(records))
    for name in fast.cols:
        a, b = fast.cols[name], slow.cols[name]
        if name in ("sa", "da"):
            a, b = np.array(fast.addresses)[a], np.array(slow.addresses)[b]
        if name == "pr":
            a, b = np.array(fast.protocols)[a], np.array(slow.protocols)[b]
        assert np.array_equal(a, b), name
    assert fastparse.parse(data + b"Summary\n") is None  # nfdump's trailer: refused, read line by line
    assert fastparse.parse(data.replace(b":", b"x", 1)) is None  # a time not of nfdump's form


def test_a_growing_file_is_read_from_where_it_stopped(tmp_path: Path, records: Path) -> None:
    data = records.read_bytes()
    path = tmp_path / ".flows.csv"
    cut = data.index(b"\n", len(data) // 2) + 1
    path.write_bytes(data[:cut] + data[cut:cut + 40])  # half, and a line the meter is still writing
    index = FlowIndex(path.stat().st_ino)
    index.extend(path)
    first = len(index)
    assert index.end == cut
    with open(path, "ab") as f:
        f.write(data[cut + 40:])
    index.extend(path)
    assert first < len(index) == len(rows_of(records)) and index.end == len(data)
