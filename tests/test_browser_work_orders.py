"""The work-order pages in headless Chromium against a real hub: a supervisor dispatches on /orders, the handler
signs for it and answers in /inbox (the call summary shown and corrected there), an operator calls back and rates
on /orders (2 reopens with a 督办 alert,
5 closes); a walk-in is entered on the staff form; texts are never HTML; the public form files an order that
/track shows."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.browser import browser, login, requires_chromium
from tests.ops_support import PASSWORD
from tests.work_order_support import at, database, staff, wo_hub
from work_orders.models import WorkOrder, WorkOrderHistory

pytestmark = [requires_chromium]
XSS = '<img src=x onerror="window.__xss=1">'
PHONE = "13812345678"


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    h = wo_hub(tmp_path_factory.mktemp("wo-browser"), at(2026, 11, 30, 10))
    yield h
    h.stop()


@pytest.fixture(scope="module")
def users(hub):
    return staff(hub, {"民一庭": ["hd1"]})


def login_as(page, hub, name: str, lands: str) -> None:
    if lands == "/":
        login(page, hub.url, name)
        return
    page.goto(f"{hub.url}/login")
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{hub.url}{lands}")


def open_row(page, order_id: int, table: str = "#orders") -> None:
    page.wait_for_selector(f"{table} tr[data-id='{order_id}']")
    page.click(f"{table} tr[data-id='{order_id}']")
    page.wait_for_selector("#detail:not([hidden]) #history")


def status_is(page, name: str) -> None:
    page.wait_for_function(f"document.querySelector('#detail .status')?.firstChild?.textContent === '{name}'")


def test_dispatch_answer_in_the_inbox_and_callback_rating(hub, users, tmp_path):
    o = users["op"].post("/api/work_orders", json={"category": "urge", "channel": "hotline",
                                                   "content": f"催立案，电话{PHONE}{XSS}", "citizen_phone": PHONE})
    assert o.status_code == 201, o.text
    oid = o.json()["id"]
    with browser(tmp_path, csp=False) as b:
        sup = b.new_page()
        login_as(sup, hub, "sup", "/")
        sup.goto(f"{hub.url}/orders")
        open_row(sup, oid)
        assert XSS in sup.inner_text("#detail .content") and sup.locator("#detail img").count() == 0
        assert PHONE not in sup.content()  # supervisors see it masked
        sup.select_option("form[data-action=dispatch] select[name=assignee]", "民一庭")
        sup.click("form[data-action=dispatch] button[type=submit]")
        status_is(sup, "已转办")

        hd = b.new_page()
        login_as(hd, hub, "hd1", "/inbox")  # a handler lands on the inbox
        hd.wait_for_function("document.querySelector('#team').textContent.includes('民一庭')")
        hd.wait_for_selector("#notices .notice")
        open_row(hd, oid)
        # the call summary is shown to the handler (masked like the rest) and may be corrected (issue 16, part 3)
        shown = hd.input_value("#summary")
        assert shown.startswith("诉求：催立案，电话138****5678") and PHONE not in shown, shown
        hd.fill("#summary", shown + "\n处理要点：请立案庭说明未立案原因")
        hd.click("#summary-save")
        hd.wait_for_function("document.querySelector('#summary-result').textContent === '摘要已保存'")
        with database(hub) as db:
            kept = db.get(WorkOrder, oid).summary.splitlines()
        assert kept[0].startswith(f"诉求：催立案，电话{PHONE}") and kept[-1] == "处理要点：请立案庭说明未立案原因"
        hd.click("#accept")
        status_is(hd, "办理中")
        hd.fill("form[data-action=answer] textarea[name=feedback]", "已催促立案庭，预计三个工作日内完成立案审查")
        hd.click("form[data-action=answer] button[type=submit]")
        status_is(hd, "已反馈")
        assert hd.locator("form[data-action=answer]").count() == 0  # answered: no second answer form

        op = b.new_page()
        login_as(op, hub, "op", "/")
        op.goto(f"{hub.url}/orders#tab=callbacks")
        open_row(op, oid, "#callbacks")
        op.click("#start-callback")
        status_is(op, "回访中")
        op.select_option("form[data-action=rate] select[name=rating]", "2")
        op.fill("form[data-action=rate] textarea[name=note]", "仍未立案")
        op.click("form[data-action=rate] button[type=submit]")
        status_is(op, "重新办理")

        # the supervisor's 督办 tab shows the alert and the reopened order
        sup.click(".tabs button[data-tab=supervision]")
        sup.wait_for_selector(f"#reopened tr[data-id='{oid}']")
        sup.wait_for_function("[...document.querySelectorAll('#alerts .notice b')]"
                              ".some(e => e.textContent === '满意度评价')")
        sup.click(f"#reopened tr[data-id='{oid}']")
        sup.wait_for_selector("form[data-action=dispatch]")
        sup.select_option("form[data-action=dispatch] select[name=assignee]", "民一庭")
        sup.click("form[data-action=dispatch] button[type=submit]")
        status_is(sup, "已转办")

        hd.reload()
        open_row(hd, oid)
        hd.fill("form[data-action=answer] textarea[name=feedback]", "已完成立案，案号已短信告知")
        hd.click("form[data-action=answer] button[type=submit]")
        status_is(hd, "已反馈")

        op.click(".tabs button[data-tab=callbacks]")  # the list again, without reloading the page
        open_row(op, oid, "#callbacks")
        op.click("#start-callback")
        status_is(op, "回访中")
        op.select_option("form[data-action=rate] select[name=rating]", "5")
        op.click("form[data-action=rate] button[type=submit]")
        status_is(op, "已办结")
        history = op.eval_on_selector_all("#history li b", "els => els.map(e => e.textContent)")
        assert [h for h in history if h != "待回访"] == ["受理", "转办", "修改摘要", "签收", "反馈", "回访",
                                                      "满意度评价", "转办", "反馈", "回访", "满意度评价"]
        assert "待回访" in history  # the scheduler's callback_due line
        for p in (sup, hd, op):
            assert p.evaluate("window.__xss") is None
    with database(hub) as db:
        order = db.get(WorkOrder, oid)
        assert order.status == "closed" and order.rating == 5 and order.reopen_count == 1


def test_walk_in_entry_form_and_refusals_on_the_page(hub, users, tmp_path):
    with browser(tmp_path, csp=False) as b:
        page = b.new_page()
        login_as(page, hub, "sup", "/")
        page.goto(f"{hub.url}/orders#tab=entry")
        page.select_option("#entry select[name=channel]", "walk_in")
        # the suggestion for the text fills category, subcategory and tags (issue 16); the clerk corrects them
        page.fill("#entry textarea[name=content]", "来访咨询退费流程")
        page.click("#entry-suggest")
        page.wait_for_function("document.querySelector('#entry-suggestion').textContent"
                               " || document.querySelector('#entry-error').textContent")
        shown = page.inner_text("#entry-suggestion")
        assert shown.startswith("系统建议："), page.inner_text("#entry-error")
        suggested_category, suggested = page.input_value("#entry-category"), page.input_value("#entry-subcategory")
        assert suggested and f"/ {suggested}（置信度" in shown  # the fields hold what is shown
        page.select_option("#entry-category", "consult")
        page.select_option("#entry-subcategory", "诉讼费/退费")
        page.fill("#entry input[name=tags]", "退费，火星")
        page.fill("#entry input[name=citizen_name]", "赵六")
        page.click("#entry button[type=submit]")
        page.wait_for_function("document.querySelector('#entry-error').textContent.includes('未知的标签：火星')")
        page.fill("#entry input[name=tags]", "退费，来访")
        page.click("#entry button[type=submit]")
        page.wait_for_function("document.querySelector('#entry-result').textContent.includes('已登记')")
        number = page.inner_text("#entry-result").split(" ")[-1]
        status_is(page, "已受理")
        # settled on the spot (即办) from the detail
        page.click("form[data-action=settle] button[type=submit]")
        status_is(page, "已办结")
    with database(hub) as db:
        o = db.scalar(select(WorkOrder).where(WorkOrder.number == number))
        assert o.channel == "walk_in" and o.subcategory == "诉讼费/退费" and o.tags == ["退费", "来访"]
        assert o.citizen_name == "赵六" and o.status == "closed"
        (kept,) = db.scalars(select(WorkOrderHistory).where(WorkOrderHistory.order_id == o.id,
                                                            WorkOrderHistory.action == "suggest")).all()
        assert kept.changes["category"] == [suggested_category, "consult"]
        assert kept.changes["subcategory"] == [suggested, "诉讼费/退费"]


def test_public_form_files_an_order_and_tracking_shows_its_progress(hub, users, tmp_path):
    with browser(tmp_path, csp=False) as b:
        page = b.new_page()
        page.goto(f"{hub.url}/submit")
        page.select_option("#category", "suggestion")
        page.fill("#citizen_name", "钱七")
        page.fill("#citizen_phone", "13911112222")
        page.fill("#content", "建议增加周六立案窗口")
        page.click("#send")
        page.wait_for_selector("#done:not([hidden])")
        number = page.inner_text("#number")
        assert number.startswith("12368-20261130-")
        page.click("#track")
        page.fill("#last4", "2222")  # the number alone shows nothing: the phone's last four digits too
        page.click("#go")
        page.wait_for_selector("#status")
        assert page.inner_text("#status") == "已受理，等待转办"
        assert "钱七" not in page.content() and "13911112222" not in page.content()


def test_the_four_lists_for_a_supervisor_and_not_for_a_handler(hub, users, tmp_path):
    o = users["op"].post("/api/work_orders", json={"category": "complaint", "channel": "letter",
                                                   "content": "来信投诉书记员态度恶劣"})
    assert o.status_code == 201, o.text
    oid = o.json()["id"]
    with browser(tmp_path, csp=False) as b:
        sup = b.new_page()
        login_as(sup, hub, "sup", "/")
        sup.goto(f"{hub.url}/orders#tab=report")
        sup.wait_for_selector(f"#report tr[data-id='{oid}']")
        assert "涉及工作人员的投诉" in sup.inner_text(f"#report tr[data-id='{oid}']")
        assert "处理：院领导阅示" in sup.inner_text("#report-rule")
        assert "/api/work_orders/lists/report/export?" in sup.get_attribute("#report-csv", "href")
        sup.click(".tabs button[data-tab=verification]")
        sup.wait_for_selector(f"#verification tr[data-id='{oid}']")
        sup.click(".tabs button[data-tab=supervision]")
        sup.wait_for_function("document.querySelector('#supervision-rule').textContent.includes('督办人员')")
        sup.click(".tabs button[data-tab=callbacks]")
        sup.wait_for_function("document.querySelector('#callbacks-rule').textContent.includes('回访')")
        hd = b.new_page()
        login_as(hd, hub, "hd1", "/inbox")
        assert hd.goto(f"{hub.url}/orders").status == 403
        assert hd.locator("#report").count() == 0


def test_the_clusters_page_shows_topics_and_marks_a_known_issue(hub, users, tmp_path):
    for text in ("执行款什么时候能到账", "我的执行款一直没有到账", "请问执行案款多久能发放"):
        r = users["op"].post("/api/work_orders", json={"category": "query", "channel": "walk_in", "content": text})
        assert r.status_code == 201, r.text
    assert users["hd1"].get("/api/work_orders/clusters").status_code == 403
    assert users["op"].get("/api/work_orders/clusters").status_code == 403
    with browser(tmp_path, csp=False) as b:
        sup = b.new_page()
        login_as(sup, hub, "sup", "/")
        sup.goto(f"{hub.url}/orders#tab=clusters")
        cluster = sup.locator(".cluster", has_text="执行")
        cluster.first.wait_for(timeout=60_000)
        assert "（3件，末周↑3）" in cluster.first.locator("h3").inner_text()
        assert cluster.first.locator(".examples li").count() == 3
        cluster.first.locator("textarea").fill("已在官网公布执行款发放流程")
        cluster.first.locator("button.mark-known").click()
        sup.wait_for_function("[...document.querySelectorAll('.cluster .known')]"
                              ".some(e => e.textContent.includes('已在官网公布执行款发放流程'))")
    csv = users["sup"].get("/api/work_orders/clusters/export?format=csv").content.decode("utf-8-sig")
    assert "2026-11-30周" in csv and "已在官网公布执行款发放流程" in csv
