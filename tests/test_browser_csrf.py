"""Issue 15, acceptance 3 in a real browser: a page on another port of the hub's host (same site, so Chromium
sends the SameSite=Lax session cookie along) posts a form and sends a credentialed fetch to the hub; nothing
changes — the admin stays logged in, the knowledge base keeps its entries, no work order is filed."""

from __future__ import annotations

import functools
import http.server
import sqlite3
import threading

import pytest

from tests.browser import Hub, browser, login, requires_chromium
from tests.sipsupport import free_udp_port

pytestmark = [requires_chromium, pytest.mark.timeout(120)]

EVIL = """<!doctype html><meta charset="utf-8"><title>evil</title>
<form id="f" method="post" enctype="multipart/form-data" action="{hub}/api/kb/import?replace=true">
<input type="file" name="file" id="file"></form>
<form id="g" method="post" action="{hub}/api/auth/logout" target="sink2"></form>
<iframe name="sink2"></iframe>
<script>
const dt = new DataTransfer();
dt.items.add(new File(['[{{"id":"X1","category":"consult","question":"被替换了吗","answer":"是的"}}]'], "kb.json",
                      {{type: "application/json"}}));
document.getElementById("file").files = dt.files;
document.getElementById("g").submit();
fetch("{hub}/api/work_orders", {{method: "POST", credentials: "include", mode: "no-cors",
  headers: {{"Content-Type": "text/plain"}},
  body: JSON.stringify({{category: "consult", content: "跨站伪造的工单", channel: "walk_in"}})}})
  .finally(() => setTimeout(() => document.getElementById("f").submit(), 300));  // then leave for the hub
</script>"""


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    h = Hub(tmp_path_factory.mktemp("hub-csrf")).start()
    h.add_user("admin1", "admin")
    yield h
    h.stop()


def counts(hub: Hub) -> tuple[int, int]:
    with sqlite3.connect(hub.home / "hotline.db") as db:
        return (db.execute("SELECT count(*) FROM kb_entries").fetchone()[0],
                db.execute("SELECT count(*) FROM work_orders").fetchone()[0])


def test_a_cross_origin_form_post_and_fetch_change_nothing(hub, tmp_path):
    site = tmp_path / "evil"
    site.mkdir()
    (site / "index.html").write_text(EVIL.format(hub=hub.url), encoding="utf-8")
    port = free_udp_port()
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", port), functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    before = counts(hub)
    assert before[0] > 0  # the default knowledge base
    try:
        with browser(tmp_path) as b:
            context = b.new_context()  # one browser profile: the hub's cookie goes along to the hub from any page
            page = context.new_page()
            login(page, hub.url, "admin1")
            evil = context.new_page()
            evil.goto(f"http://127.0.0.1:{port}/index.html")
            evil.wait_for_url(f"{hub.url}/api/kb/import?replace=true", timeout=15000)  # the form was posted
            assert "跨站请求已拒绝" in evil.content(), evil.content()[:500]
            me = page.evaluate("fetch('/api/auth/me', {credentials: 'same-origin'}).then(r => r.status)")
    finally:
        server.shutdown()
    assert me == 200  # still logged in: the cross-site logout was refused
    assert counts(hub) == before  # the knowledge base not replaced, no order filed
