"""The console in a real headless Chromium against the real operator (see conftest.py)."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta
from typing import Any

from conftest import SHOTS, World
from openclaw_cron.cli.stats import summarize
from support.http import list_all

XSS_TEXT = '<img src=x onerror="window.__xss=1;alert(1)">'


def archive_items(world: World, namespace: str) -> list[dict[str, Any]]:
    """Every archived attempt of `namespace` in the last 7 days, read from the archive API (direct listener)."""
    since = (datetime.now(world.now.tzinfo) - timedelta(days=7)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return list_all(
        f"{world.direct}/apis/archive.cron.openclaw.io/v1alpha1/namespaces/{namespace}/runs?limit=1000&since={since}"
    )


def open_page(browser: Any, url: str) -> tuple[Any, list[str]]:
    page = browser.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(url)
    return page, dialogs


def screenshot(page: Any, name: str) -> None:
    """Save docs/console/NAME.png and check it is not blank (pixel variance, computed by the browser)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    data = page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=False)
    probe = page.context.new_page()
    variance = probe.evaluate(
        """async (src) => {
            const img = new Image(); img.src = src; await img.decode();
            const c = document.createElement('canvas'); c.width = img.width; c.height = img.height;
            const g = c.getContext('2d'); g.drawImage(img, 0, 0);
            const px = g.getImageData(0, 0, c.width, c.height).data;
            let n = 0, sum = 0, sq = 0;
            for (let i = 0; i < px.length; i += 16) {
                const v = (px[i] + px[i+1] + px[i+2]) / 3; n++; sum += v; sq += v*v;
            }
            return sq / n - (sum / n) ** 2;
        }""",
        "data:image/png;base64," + base64.b64encode(data).decode(),
    )
    probe.close()
    assert variance > 100, f"{name}.png looks blank (pixel variance {variance:.1f})"


def test_overview_counts_and_rates_match_the_archive(world: World, browser: Any) -> None:
    page, _ = open_page(browser, world.console("alice"))
    page.wait_for_selector("tr.job")
    expected = {r["job"]: r for r in summarize(archive_items(world, "team-a"))}
    runs = sum(r["runs"] for r in expected.values())
    ok = sum(r["succeeded"] for r in expected.values())
    assert page.inner_text("#t-runs") == str(runs)
    assert page.inner_text("#t-succeeded") == str(ok)
    assert page.inner_text("#t-failed") == str(sum(r["failed"] for r in expected.values()))
    assert page.inner_text("#t-rate") == f"{int(ok / runs * 1000) / 10:.1f}%"
    rows = page.query_selector_all("tr.job")
    assert len(rows) == 30  # team-a's jobs, none of team-b's
    for row in rows:
        job = row.get_attribute("data-job")
        want = expected.get(job, {"runs": 0, "successRate": None})
        assert row.query_selector("[data-field=runs]").inner_text() == str(want["runs"]), job
        rate = want["successRate"]
        shown = row.query_selector("[data-field=rate]").inner_text()
        assert shown == ("—" if rate is None else f"{int(rate * 1000) / 10:.1f}%"), (job, shown, rate)
        if want["runs"]:
            assert len(row.query_selector_all("svg.strip rect")) == 20, job
    screenshot(page, "overview")
    page.close()


def test_timeline_bars_are_the_runs_times(world: World, browser: Any) -> None:
    job = "a-job-04"
    start = world.now - timedelta(days=7)
    end = world.now + timedelta(hours=24)
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    base = world.console("alice").replace("/overview", "/timeline")
    page, _ = open_page(browser, f"{base}?q={job}&from={start.strftime(fmt)}&to={end.strftime(fmt)}")
    page.wait_for_selector("svg.timeline")
    bars = page.eval_on_selector_all(
        f'rect.bar[data-job="{job}"]',
        "els => els.map(e => ({run: e.dataset.run, start: e.dataset.start, end: e.dataset.end, "
        "x: +e.getAttribute('x'), w: +e.getAttribute('width'), cls: e.getAttribute('class'), "
        "count: +e.dataset.count}))",
    )
    attempts = [i for i in archive_items(world, "team-a") if i["job"] == job]
    # one bar per attempt, except attempts starting in the same pixel bucket (a retry right after its
    # failure): one bar counting them, from the first start to the last end
    assert sum(b["count"] for b in bars) == len(attempts) and len(bars) >= 40
    merged = [b for b in bars if b["count"] > 1]
    svg = page.query_selector("svg.timeline")
    gutter, plot = float(svg.get_attribute("data-gutter")), float(svg.get_attribute("data-plot"))
    t0 = datetime.fromisoformat(svg.get_attribute("data-start").replace("Z", "+00:00"))
    t1 = datetime.fromisoformat(svg.get_attribute("data-end").replace("Z", "+00:00"))
    by_name = {b["run"]: b for b in bars}
    for item in attempts:
        begin = item.get("startTime") or item["scheduledTime"]
        if item["metadata"]["name"] not in by_name:
            assert any(b["start"] <= begin <= b["end"] for b in merged), item["metadata"]["name"]
            continue
        bar = by_name[item["metadata"]["name"]]
        assert (bar["start"], bar["end"]) == (begin, item.get("completionTime") or begin)
        x = gutter + (datetime.fromisoformat(begin.replace("Z", "+00:00")) - t0) / (t1 - t0) * plot
        assert abs(bar["x"] - x) < 0.05, (item["metadata"]["name"], bar, x)
        assert ("r-failed" in bar["cls"]) == (item["result"] in ("Failed", "TimedOut"))
        assert ("retry" in bar["cls"]) == (item["attempt"] > 1)
    slots = page.eval_on_selector_all(f'line.slot[data-job="{job}"]', "els => els.map(e => e.dataset.time)")
    assert slots and all(s > world.now.strftime(fmt) for s in slots)  # upcoming slots only after now
    # the window moves and zooms by links
    page.click("#zoom-in")
    page.wait_for_selector("svg.timeline")
    z0, z1 = page.get_attribute("svg.timeline", "data-start"), page.get_attribute("svg.timeline", "data-end")
    span = datetime.fromisoformat(z1.replace("Z", "+00:00")) - datetime.fromisoformat(z0.replace("Z", "+00:00"))
    assert abs(span - (t1 - t0) / 2) < timedelta(seconds=2)
    page.goto(base)
    page.wait_for_selector("svg.timeline rect.bar")
    screenshot(page, "timeline")
    page.close()


def test_a_run_page_shows_reply_and_log_as_text(world: World, browser: Any) -> None:
    brief = next(e for e in world.entries if (e.namespace, e.job) == ("team-a", "brief") and e.reply)
    url = world.console("alice").replace("/overview", f"/run?name=brief~{brief.run_id}~1")
    page, dialogs = open_page(browser, url)
    assert page.query_selector("#reply"), page.content()[:3000]
    assert XSS_TEXT in page.inner_text("#reply") and "Morning brief: three meetings." in page.inner_text("#reply")
    log = page.inner_text("#log")
    assert log.startswith(f"starting {brief.run_id}") and XSS_TEXT in log and "the end" in log
    assert page.inner_text("#run-gateway") == f"gw-{brief.run_id}" and page.inner_text("#run-node") == "emulated-node"
    assert "delivered" in page.inner_text("#delivery")
    page.wait_for_timeout(500)
    assert page.evaluate("window.__xss") is None and not dialogs  # the payload never ran
    assert page.query_selector("#reply img, #log img, #reply script, #log script") is None
    screenshot(page, "run")
    page.close()


def test_run_now_appears_live(world: World, browser: Any) -> None:
    page, _ = open_page(browser, world.console("alice").replace("/overview", "/job?name=runner"))
    page.wait_for_selector("#job-live")
    page.evaluate("window.__marker = 'no reload'")
    before = page.eval_on_selector_all("tr.run", "els => els.map(e => e.dataset.run)")
    assert before == []
    page.click("button[data-action=run-now]")
    page.wait_for_selector("#flash.ok")
    page.wait_for_selector("tr.run", timeout=60_000)  # archived after the Pod finished, shown by the poll
    assert page.evaluate("window.__marker") == "no reload"
    row = page.query_selector("tr.run")
    assert "Manual" in row.inner_text() and "Succeeded" in row.inner_text()
    page.click("tr.run a")
    page.wait_for_selector("#log")
    assert page.inner_text("#log").strip() == "ran from the console"
    page.goto(world.console("alice").replace("/overview", "/job?name=brief"))
    page.wait_for_selector("svg.durations")
    screenshot(page, "job")
    page.close()


def test_a_user_sees_nothing_of_a_namespace_rbac_hides(world: World, browser: Any) -> None:
    url = world.console("alice")
    page, _ = open_page(browser, url.replace("/namespaces/team-a/", "/namespaces/team-b/"))
    # the API server itself refuses (alice may not get `console` in team-b): its Status, no data
    status = json.loads(page.inner_text("body"))
    assert (status["code"], status["reason"]) == (403, "Forbidden")
    assert status["message"].startswith('console.archive.cron.openclaw.io "overview" is forbidden: User "alice"')
    assert "b-job" not in page.content()
    page.goto(url.replace("/overview", "/overview?scope=all"))
    page.wait_for_selector("tr.job")
    assert page.inner_text("#t-namespaces") == "1" and "b-job" not in page.content()
    page.close()


def test_a_forbidden_action_shows_the_api_servers_message(world: World, browser: Any) -> None:
    page, _ = open_page(browser, world.console("bob").replace("/overview", "/job?name=runner"))
    page.wait_for_selector("button[data-action=suspend]")
    page.click("button[data-action=suspend]")
    page.wait_for_selector("#flash.error")
    message = page.inner_text("#flash")
    assert "refused (403)" in message, message
    assert 'openclawcronjobs.cron.openclaw.io "runner" is forbidden: User "bob" cannot patch resource' in message
    job = world.cluster.get("cron.openclaw.io/v1alpha1", "openclawcronjobs", "team-a", "runner")
    assert not (job or {}).get("spec", {}).get("suspend")
    page.close()
