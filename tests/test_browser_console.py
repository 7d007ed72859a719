"""The console in headless Chromium: login, roles, logout (pages in Simplified Chinese)."""

from __future__ import annotations

import pytest

from tests.browser import Hub, browser, login, requires_chromium

pytestmark = [requires_chromium]


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    h = Hub(tmp_path_factory.mktemp("hub")).start()
    h.add_user("admin1", "admin")
    h.add_user("op1", "operator")
    yield h
    h.stop()


def test_login_shows_the_console_and_logout_returns_to_login(hub, tmp_path):
    with browser(tmp_path) as b:
        page = b.new_page()
        page.goto(f"{hub.url}/")
        assert page.url.endswith("/login")  # not logged in: redirected
        page.fill("input[name=username]", "op1")
        page.fill("input[name=password]", "wrong-password")
        page.click("button[type=submit]")
        page.wait_for_load_state()
        assert "/login" in page.url
        login(page, hub.url, "op1")
        assert "12368 诉讼服务热线" in page.title()
        assert "接线员" in page.inner_text("#user")
        page.click("#logout")
        page.wait_for_url(f"{hub.url}/login")
        page.goto(f"{hub.url}/")
        assert page.url.endswith("/login")
