"""The operators' dashboard in a real browser: headless Chromium renders <data>/www/index.html during a real restore
(real CASA, nginx as the store); screenshots are saved as test artifacts and the rendered DOM is checked.

Artifacts: $DROPBOX_TEST_ARTIFACTS/dashboard (default .build/test-artifacts/dashboard).
"""
import html
import os
import pathlib
import re
import shutil
import subprocess
import time

import pytest

from agentlib import MOUS_A, RestoreAgent, FIXTURE, require_prerequisites, start_nginx, wait_until

ROOT = pathlib.Path(__file__).resolve().parent.parent
ARTIFACTS = pathlib.Path(os.environ.get("DROPBOX_TEST_ARTIFACTS", ROOT / ".build/test-artifacts")) / "dashboard"


def chromium() -> str:
    path = shutil.which("chromium")
    assert path, "chromium not found: install it with `sudo apt-get install --no-install-recommends chromium` (or `make deps`)"
    return path


def browser(url: str, *args: str) -> subprocess.CompletedProcess:
    # --no-sandbox: the tests may run as root (CI containers), where Chromium's sandbox refuses to start.
    return subprocess.run(
        [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1400,1800",
         "--user-data-dir=" + str(ARTIFACTS / ".profile"), *args, url],
        capture_output=True, text=True, timeout=60)


def rendered_dom(page: pathlib.Path) -> str:
    r = browser(page.as_uri(), "--dump-dom")
    assert r.returncode == 0 and "<html" in r.stdout, r.stderr[-2000:]
    return r.stdout


def screenshot(page: pathlib.Path, name: str) -> pathlib.Path:
    out = ARTIFACTS / f"{name}.png"
    r = browser(page.as_uri(), f"--screenshot={out}")
    assert r.returncode == 0 and out.exists() and out.stat().st_size > 1000, r.stderr[-2000:]
    return out


def running_row(dom: str, name: str):
    m = re.search(r'<tr class="running" data-request="%s" data-step="(\d)">(.*?)</tr>' % re.escape(name), dom, re.S)
    if not m:
        return None
    value = re.search(r'<progress class="overall" value="([0-9.]+)" max="1">', m.group(2))
    return int(m.group(1)), float(value.group(1)), m.group(2)


@pytest.fixture(scope="module", autouse=True)
def prerequisites():
    require_prerequisites()
    chromium()
    if ARTIFACTS.exists():
        shutil.rmtree(ARTIFACTS)
    ARTIFACTS.mkdir(parents=True)


def test_dashboard_in_chromium_during_a_real_restore(tmp_path):
    nginx = start_nginx(FIXTURE / "store", tmp_path / "nginx")
    agent = RestoreAgent(tmp_path, nginx.url, extra={"dashboard": {"refreshSeconds": 1, "file": str(tmp_path / "www/index.html")}})
    try:
        agent.start()
        index = tmp_path / "www/index.html"
        wait_until(index.exists, 10, "the dashboard to be written")
        empty = rendered_dom(index)
        assert "the queue is empty" in empty and 'id="count-running">0<' in empty
        screenshot(index, "0-idle")

        agent.drop("dash-demo", {"mous": MOUS_A, "email": ["pi@example.org"], "requestId": "dashboard"})
        # While it runs: the row, its step and the overall progress bar, seen by the browser, moving forward.
        seen = []
        deadline = time.time() + 600
        while time.time() < deadline:
            status = agent.status("dash-demo") or {}
            if status.get("state") in ("succeeded", "failed", "cancelled", "rejected"):
                break
            dom = rendered_dom(index)
            row = running_row(dom, "dash-demo")
            if row:
                if not seen or (row[0], row[1]) != seen[-1][:2]:
                    seen.append(row)
                    screenshot(index, f"1-running-step{row[0]}-{len(seen)}")
        assert seen, "the browser never showed the request running"
        steps = [s for s, _, _ in seen]
        values = [v for _, v, _ in seen]
        assert steps == sorted(steps) and values == sorted(values), seen
        assert len(set(values)) >= 2, f"the progress bar did not move: {seen}"
        assert MOUS_A in seen[0][2] and 'href="requests/dash-demo.html"' in seen[0][2]

        status = agent.wait_terminal("dash-demo")
        assert status["state"] == "succeeded", status.get("error")
        # Within a second of the change, the dashboard says so.
        def finished_row():
            dom = rendered_dom(index)
            return dom if re.search(r'<tr class="succeeded" data-request="dash-demo" data-state="succeeded">', dom) else None
        dom = wait_until(finished_row, 15, "the finished row in the browser")
        assert 'id="count-succeeded-24h">1<' in dom and 'id="count-running">0<' in dom
        assert re.search(r'<svg id="chart-succeeded"[^>]*data-total="1"', dom), "the 24 h chart counts the success"
        assert "<script" not in index.read_text(), "no JavaScript"
        assert not re.search(r'(src|href)="(https?:)?//', index.read_text()), "no external assets"
        screenshot(index, "2-finished")

        # The request's page, reached through the link the index has.
        link = re.search(r'<a class="request" href="([^"]+)">dash-demo</a>', dom).group(1)
        page = (index.parent / html.unescape(link)).resolve()
        assert page.exists(), page
        detail = rendered_dom(page)
        assert 'id="state">succeeded<' in detail
        history = re.search(r'<table id="history">(.*?)</table>', detail, re.S).group(1)
        assert len(re.findall(r"<tr>", history)) >= 7, "claimed plus six steps plus the end"
        screenshot(page, "3-request-page")
        assert len(list(ARTIFACTS.glob("*.png"))) >= 4
    finally:
        agent.stop()
        nginx.stop()
