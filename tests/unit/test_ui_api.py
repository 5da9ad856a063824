"""What the web interface stands on: its static files (no token, a strict Content-Security-Policy, nothing from
another origin, no HTML built from data), and the API routes it needed, for every role and project:
GET /observation-points (live rates), GET /usage, and GET /captures paged and filtered."""

from __future__ import annotations

import re
import time

from opentap.api.ui import CSP, STATIC

from ..support.apicalls import headers
from ..support.flowrecords import plant

POINTS = {"shared": "lo", "bobs": '{interface = "lo", projects = ["bob"]}',
          "root": '{interface = "lo", admin_only = true}'}


def test_the_files_need_no_token_and_carry_the_policy(client) -> None:  # noqa: ANN001
    r = client.get("/ui", follow_redirects=False)
    assert r.status_code == 308 and r.headers["location"] == "/ui/"
    page = client.get("/ui/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert page.headers["content-security-policy"] == CSP
    assert page.headers["x-content-type-options"] == "nosniff" and page.headers["x-frame-options"] == "DENY"
    for name in re.findall(r'(?:src|href)="([^"#:/][^"#:]*)"', page.text):  # relative: the page's own
        r = client.get("/ui/" + name)
        assert r.status_code == 200 and r.headers["content-security-policy"] == CSP, name
    assert client.get("/ui/app.js").headers["content-type"].startswith(("text/javascript", "application/javascript"))
    assert client.get("/ui/nothing.js").status_code == 404
    assert client.get("/ui/../opentap.conf").status_code == 404


def test_the_policy_allows_no_inline_code_and_no_other_origin() -> None:
    directives = dict(d.strip().split(" ", 1) for d in CSP.split(";"))
    assert directives["default-src"] == "'none'" and directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'" and directives["connect-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'" and "unsafe" not in CSP and "http" not in CSP
    html = (STATIC / "index.html").read_text()
    assert "<script>" not in html and " style=" not in html and "<style" not in html
    assert all(src.startswith(("vendor/", "app.")) for src in re.findall(r'src="([^"]+)"', html))
    for js in STATIC.glob("*.js"):  # ours: the DOM is built from text nodes, never from HTML
        text = js.read_text()
        for danger in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function",
                       "http://", "https://"):
            assert danger not in text.replace("http://www.w3.org/2000/svg", ""), (js.name, danger)
        assert "localStorage" not in text and "?token" not in text, js.name  # the token: sessionStorage, headers
    assert (STATIC / "vendor" / "uPlot.LICENSE").read_text().startswith("The MIT License")


def test_observation_points_and_rates_per_role(make_client) -> None:  # noqa: ANN001
    client = make_client(points=POINTS)
    seen = {}
    for token in ("tok-admin", "tok-alice", "tok-alice-reader", "tok-bob"):
        r = client.get("/observation-points", headers=headers(token))
        assert r.status_code == 200, r.text
        seen[token] = {p["name"]: p for p in r.json()["points"]}
    assert set(seen["tok-admin"]) == {"shared", "bobs", "root"} and seen["tok-admin"]["root"]["interface"] == "lo"
    assert set(seen["tok-alice"]) == set(seen["tok-alice-reader"]) == {"shared"}
    assert set(seen["tok-bob"]) == {"shared", "bobs"} and "interface" not in seen["tok-bob"]["bobs"]
    assert client.get("/observation-points").status_code == 401
    time.sleep(0.6)  # a second sample, at least MIN_GAP later: now there are rates
    point = client.get("/observation-points", headers=headers("tok-alice")).json()["points"][0]
    assert point["rx_bps"] is not None and point["rx_bps"] >= 0 and len(point["history"]) >= 1
    assert point["rx_bytes"] > 0 and point["state"] in ("unknown", "up")


def test_usage_shows_a_member_its_own_project_only(make_client) -> None:  # noqa: ANN001
    client = make_client(project_disk_quota_mb=10, disk_quota_mb=100)
    dev = client.app.state.device
    plant(dev.sessions, dev.cfg.data_dir, "bob", "b1", None)
    (dev.cfg.data_dir / "projects" / "bob" / "b1" / "data.bin").write_bytes(b"x" * 5000)  # not in its row: not counted
    mine = client.get("/usage", headers=headers("tok-alice")).json()
    assert mine["project"] == {"name": "alice", "used_bytes": 0, "quota_bytes": 10 * 2**20, "running": 0,
                               "max_concurrent_captures": 4}
    assert "used_bytes" not in mine["device"] and mine["device"]["quota_bytes"] == 100 * 2**20
    admin = client.get("/usage", headers=headers()).json()
    assert admin["device"]["used_bytes"] >= 0 and admin["device"]["filesystem_free_bytes"] > 0
    assert client.get("/usage").status_code == 401


def test_the_capture_list_pages_and_filters_on_the_device(make_client) -> None:  # noqa: ANN001
    client = make_client(points=POINTS)
    dev = client.app.state.device
    for i in range(12):
        plant(dev.sessions, dev.cfg.data_dir, "alice", f"c{i:02d}", None, capture_type="linkstats",
              point="shared" if i % 2 else "bobs", start=1_800_000_000 + i * 100, created_at=1_800_000_000 + i)
    plant(dev.sessions, dev.cfg.data_dir, "bob", "theirs", None)
    alice = headers("tok-alice")
    page = client.get("/captures", params={"limit": 5, "order": "desc"}, headers=alice).json()
    assert page["total"] == 12 and [c["id"] for c in page["captures"]] == ["c11", "c10", "c09", "c08", "c07"]
    page = client.get("/captures", params={"limit": 5, "offset": 10}, headers=alice).json()
    assert [c["id"] for c in page["captures"]] == ["c10", "c11"] and page["offset"] == 10
    odd = client.get("/captures", params={"observationpt": "shared", "limit": 100}, headers=alice).json()
    assert odd["total"] == 6 and all(c["observationpt"] == "shared" for c in odd["captures"])
    window = client.get("/captures", params={"since": 1_800_000_300, "until": 1_800_000_500}, headers=alice).json()
    assert [c["id"] for c in window["captures"]] == ["c03", "c04", "c05"]  # windows of 30 s every 100 s
    assert "total" not in client.get("/captures", headers=alice).json()  # without limit: as before, all of them
    assert client.get("/captures", params={"limit": 100, "project": "bob"}, headers=alice).json()["total"] == 12
    assert client.get("/captures", params={"limit": 100, "project": "bob"}, headers=headers()).json()["total"] == 1
    for bad in ({"limit": "0"}, {"limit": "1001"}, {"offset": "x"}, {"order": "sideways"}, {"since": "soon"}):
        r = client.get("/captures", params=bad, headers=alice)
        assert r.status_code == 400 and r.json()["msg"], (bad, r.text)
