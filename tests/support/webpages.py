"""The web interface's pages as a person uses them, for the browser tests: sign in and out, go to a page, fill and
submit its forms, wait for what the page shows, take screenshots. Elements are found by their labels, names and
roles, as the page exposes them to assistive technology."""

from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import Any

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from .browser import wait


class Page:
    def __init__(self, driver: Any, base_url: str, artifacts: Path) -> None:
        self.driver, self.base, self.artifacts = driver, base_url, artifacts
        self.shots = 0

    def css(self, selector: str, root: Any = None) -> list[Any]:
        return (root or self.driver).find_elements(By.CSS_SELECTOR, selector)

    def one(self, selector: str, root: Any = None, timeout: float = 20) -> Any:
        return wait(lambda: (self.css(selector, root) or [None])[0], timeout, selector)

    def body_text(self) -> str:
        return self.driver.find_element(By.TAG_NAME, "body").text

    def wait_text(self, text: str, timeout: float = 20) -> None:
        wait(lambda: text in self.body_text(), timeout, repr(text))

    def shot(self, name: str) -> Path:
        """The whole page, beyond the window too (Chromium's own full-page capture), numbered in order taken."""
        self.shots += 1
        path = self.artifacts / f"{self.shots:02d}-{name}.png"
        time.sleep(0.3)  # let a chart that is being redrawn settle
        size = self.driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
        shot = self.driver.execute_cdp_cmd("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": size["width"], "height": min(size["height"], 8000), "scale": 1}})
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    def sign_in(self, token: str) -> None:
        if not self.css("input[name=token]"):
            self.driver.get(self.base + "/ui/")
        field = self.one("input[name=token]")
        field.clear()
        field.send_keys(token)
        self.one("form.signin button[type=submit]").click()
        wait(lambda: self.css("form.signin .error") or not self.css("form.signin"), 20, "signing in")

    def alert_text(self) -> str:
        return self.one("form.signin .error").text

    def sign_out(self) -> None:
        self.one("#signout").click()
        self.one("input[name=token]")

    def go(self, page: str) -> None:
        self.one(f'nav a[data-page="{page}"]').click()
        wait(lambda: self.css(f'nav a[data-page="{page}"][aria-current="page"]'), 10, page)

    def form(self, label: str) -> Any:
        return self.one(f'form[aria-label="{label}"]')

    def fill(self, form: Any, values: dict[str, str]) -> None:
        for name, value in values.items():
            el = self.one(f'[name="{name}"]', form)
            if el.tag_name == "select":
                choice = Select(el)
                match = [o for o in choice.options if o.get_attribute("value") == value or o.text.startswith(value)]
                assert match, (name, value, [o.text for o in choice.options])
                choice.select_by_visible_text(match[0].text)
            else:
                el.clear()
                el.send_keys(value)

    def submit(self, form: Any) -> None:
        self.one("button[type=submit]", form).click()

    def create_port(self, name: str, interface: str, project: str) -> None:
        form = self.form("Create a port")
        self.fill(form, {"name": name, "interface": interface, "project_id": project})
        self.submit(form)
        self.wait_text(f"Created port {name}")

    def create_service(self, name: str, port: str) -> None:
        form = self.form("Create a tap service")
        self.fill(form, {"name": name, "port_id": port})
        self.submit(form)
        self.wait_text(f"Created tap service {name}")

    def create_flow(self, name: str, service: str, port: str, direction: str) -> None:
        form = self.form("Create a tap flow")
        self.fill(form, {"name": name, "tap_service_id": service, "source_port": port, "direction": direction})
        self.submit(form)
        self.wait_text(f"Created tap flow {name}")

    def row(self, first_cell: str) -> Any:
        for tr in self.css("table tbody tr"):
            cells = self.css("td", tr)
            if cells and cells[0].text == first_cell:
                return tr
        return None

    def wait_flow_status(self, name: str, status: str, timeout: float = 20) -> None:
        wait(lambda: (r := self.row(name)) is not None and self.css(f".badge.s-{status}", r), timeout,
             f"{name} {status}")

    def schedule(self, capture_type: str, point: str, seconds: int, capture_id: str) -> None:
        form = self.one('form[aria-labelledby="schedule-title"]')
        self.fill(form, {"type": capture_type, "observationpt": point, "duration": str(seconds), "id": capture_id})
        self.submit(form)
        self.wait_text(f"Scheduled {capture_id}")

    def wait_row(self, capture_id: str, state: str, timeout: float = 30) -> None:
        wait(lambda: (r := self.row(capture_id)) is not None and self.css(f".badge.s-{state}", r), timeout,
             f"{capture_id} {state}")

    def open_capture(self, capture_id: str) -> None:
        self.driver.find_element(By.LINK_TEXT, capture_id).click()
        self.wait_text(f"Capture {capture_id}")

    def top_talker(self) -> str:
        return self.one("#top-talkers ol li .label", timeout=30).text

    def wait_flow_rows(self) -> None:
        self.one("#flow-table tbody tr", timeout=30)

    def charts(self) -> list[str]:
        """The titles of the time charts on the page, once there are some."""
        return wait(lambda: [t.text for t in self.css(".chart .u-title")], 20, "charts")

    def sort_flows(self, header: str) -> None:
        button = wait(lambda: [b for b in self.css("#flow-table th button.sort") if b.text == header][0], 10, header)
        button.click()
        wait(lambda: [th for th in self.css("#flow-table th[aria-sort]") if th.text.startswith(header)], 10, header)

    def download(self, capture_id: str, fmt: str, directory: Path, timeout: float = 30) -> Path:
        before = set(directory.glob("*"))
        self.one(f'button[aria-label="Download {capture_id} as {fmt}"]').click()

        def done() -> Path | None:
            new = [p for p in set(directory.glob("*")) - before if not p.name.endswith(".crdownload")]
            return new[0] if new else None

        return wait(done, timeout, f"the download of {capture_id} as {fmt}")

    def console_problems(self) -> list[str]:
        """Script errors and Content-Security-Policy refusals in the browser's console (a 4xx answer the page
        handled, such as the refused token, is not a problem)."""
        entries = self.driver.get_log("browser")
        return [e["message"] for e in entries
                if e["level"] == "SEVERE" and "Failed to load resource" not in e["message"]]
