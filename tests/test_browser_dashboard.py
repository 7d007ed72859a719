"""The supervisors' dashboard page (/dashboard) in headless Chromium against a real hub process whose database
holds the hand-computed week of tests/test_dashboard.py: the visible figures equal the API's, the charts are drawn
(bars per category and department, trend lines), filters reload the figures, the export links carry the filters,
the console links the page for supervisors only, and a screenshot is saved in the test's tmp directory.
"""

from __future__ import annotations

import pytest

from hotline.db import make_engine, session_factory
from tests.browser import Hub, browser, login, requires_chromium
from tests.test_dashboard import seed

pytestmark = [requires_chromium]
TIMEOUT_MS = 15_000
WEEK = ("2026-06-01", "2026-06-07")


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    h = Hub(tmp_path_factory.mktemp("dashhub")).start()
    try:
        h.add_user("sup1", "supervisor")
        h.add_user("op1", "operator")
        engine = make_engine(f"sqlite:///{h.home / 'hotline.db'}")
        with session_factory(engine)() as db:
            seed(db)
            db.commit()
        engine.dispose()
        yield h
    finally:
        h.stop()


@pytest.fixture(scope="module")
def chromium(tmp_path_factory):
    with browser(tmp_path_factory.mktemp("chromium"), csp=False) as b:
        yield b


def _page(chromium, hub, user):
    ctx = chromium.new_context(locale="zh-CN", viewport={"width": 1400, "height": 1100})
    ctx.set_default_timeout(TIMEOUT_MS)
    page = ctx.new_page()
    login(page, hub.url, user)
    return ctx, page


def _apply(page, **values):
    before = page.evaluate("document.body.dataset.answered || ''")
    for k, v in values.items():
        if k in ("category", "department"):
            page.select_option(f"#{k}", v)
        else:
            page.fill(f"#{k}", v)
    page.click("#apply")
    page.wait_for_function(f"(document.body.dataset.answered || '') !== {before!r}")


def pct(x):
    return "–" if x is None else f"{x * 100:.1f}%"


def test_dashboard_shows_the_apis_figures_and_charts(chromium, hub, tmp_path):
    ctx, page = _page(chromium, hub, "sup1")
    try:
        assert page.locator("#dashboard-link").is_visible()  # the console links it for supervisors
        page.click("#dashboard-link")
        page.wait_for_function("document.body.dataset.loaded")
        _apply(page, **{"from": WEEK[0], "to": WEEK[1]})
        api = page.request.get(f"{hub.url}/api/dashboard?from={WEEK[0]}&to={WEEK[1]}").json()
        text = lambda sel: page.locator(sel).text_content()  # noqa: E731
        assert text("#received") == "11" == str(api["orders"]["received"])
        assert text("#settled") == "2" and text("#settled-share") == pct(api["orders"]["settled_at_once_share"])
        assert text("#avg-hours") == "27.25" == str(api["handling"]["avg_hours"])
        assert text("#p90-hours") == "72" and float(text("#p90-hours")) == api["handling"]["p90_hours"]
        assert text("#mean-rating") == "4.33" and text("#satisfied-share") == "83.3%" and text("#rated") == "6"
        assert text("#calls-period") == "4" and text("#auto-share") == "33.3%"
        # overdue is as of the hub's real clock: O (due 06-09) is late too by now
        assert text("#overdue-total") == str(sum(o["count"] for o in api["overdue"])) != "0"
        assert text("#calls-today") == str(api["calls"]["today"])
        # charts: a bar per category with its count, a bar per overdue department, three trend lines
        bars = page.locator("#chart-categories text[data-value]")
        assert bars.count() == 6
        assert [int(v) for v in bars.evaluate_all("els => els.map(e => e.textContent)")] == [
            c["count"] for c in api["categories"]]
        assert page.locator("#chart-categories rect").count() == 6
        assert page.locator("#chart-overdue rect").count() == len(api["overdue"]) >= 2
        assert "未转办" in text("#chart-overdue") and "执行局" in text("#chart-overdue")
        assert page.locator("#chart-trend path").count() == 3 and page.locator("#chart-rating path").count() == 1
        assert page.locator("#topics tr").count() == 1 and "检察院" in text("#topics")
        assert "检察院 2" in text("#keywords")
        href = page.locator("#export-orders-xlsx").get_attribute("href")
        assert f"from={WEEK[0]}" in href and "kind=orders" in href and "format=xlsx" in href
        shot = tmp_path / "dashboard.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000
        print(f"dashboard screenshot: {shot}")

        _apply(page, category="consult")
        assert text("#received") == "4" and text("#avg-hours") == "5.7" and text("#p90-hours") == "24"
        assert page.locator("#chart-categories rect").count() == 1
        _apply(page, category="", department="民一庭")
        assert text("#received") == "3" and text("#avg-hours") == "29.33"
        _apply(page, department="", **{"from": "2026-06-07", "to": "2026-06-01"})
        assert text("#error") == "开始日期不能晚于结束日期"
        assert text("#received") == "3"  # the last good figures stay
    finally:
        ctx.close()


def test_operators_neither_see_the_link_nor_the_page(chromium, hub):
    ctx, page = _page(chromium, hub, "op1")
    try:
        assert page.locator("#dashboard-link").is_hidden()
        r = page.goto(f"{hub.url}/dashboard")
        assert r.status == 403 and "权限不足" in page.content()
        assert page.request.get(f"{hub.url}/api/dashboard").status == 403
    finally:
        ctx.close()
