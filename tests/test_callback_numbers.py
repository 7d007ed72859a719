"""Issue 15, item 2: the automatic callback dials only mainland numbers, taken from the caller's SIP user part.

The dial plan (work_orders/dial_plan.py) on its own, then the hub's dispatcher (in-process on a real SQLite file,
a stand-in worker on the real command socket, as in tests/test_callback_dispatch.py): an order whose number is
international or a service code gets no call, and staff see why in Chinese — in the order's history, a supervisor
notice, and the order view's ``callback_refusal``; a dialable order shows its ``callback_number`` before the first
automatic call and is called at exactly that number."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from agent_console.work_orders.views import order_out
from tests.test_callback_dispatch import MONDAY, Clock, answered, connect, engine, history, make_app, order, received
from work_orders.dial_plan import caller_number, check
from work_orders.models import WorkOrderNotice

__all__ = ["engine"]  # the fixture, imported for this module


@pytest.mark.parametrize(("uri", "user"), [
    ('"x" <sip:13812345678@10.0.0.5:5060>', "13812345678"),
    ("<sip:+8613812345678@10.0.0.5:5060;user=phone>", "+8613812345678"),
    ("sip:02112345678@192.168.1.20:5062;transport=tcp", "02112345678"),
    ("tel:+88612345678", "+88612345678"),
    ("<sip:anonymous@10.0.0.5>", "anonymous"),
])
def test_the_caller_number_is_the_uri_user_part_never_host_or_port(uri, user):
    assert caller_number(uri) == user


@pytest.mark.parametrize(("phone", "number"), [
    ("13812345678", "13812345678"), ("+86 138-1234-5678", "13812345678"), ("008613912345678", "13912345678"),
    ("010-12345678", "01012345678"), ("0755 2345 6789", "075523456789"), ("0371-1234567", "03711234567"),
])
def test_mainland_mobiles_and_landlines_are_dialled_in_national_form(phone, number):
    assert check(phone).ok and check(phone).number == number


@pytest.mark.parametrize(("phone", "why"), [
    ("+88612345678", "境外号码"), ("0012025550123", "境外号码"), ("+1 202 555 0123", "境外号码"),
    ("10086", "特服号码"), ("95588", "特服号码"), ("12345", "特服号码"), ("4008123456", "特服号码"),
    ("12368", "特服号码"), ("1381234567", "不是大陆手机号"), ("11012345678", "不是大陆手机号"),
    ("anonymous", "非数字"), ("", "未留联系电话"), ("1005060", "特服号码"),
])
def test_international_short_and_service_numbers_are_refused_with_a_chinese_reason(phone, why):
    verdict = check(phone)
    assert not verdict.ok and verdict.number == "" and why in verdict.reason, verdict


def test_the_dispatcher_refuses_foreign_and_service_numbers_and_shows_staff_why(engine):
    app = make_app(engine, Clock(MONDAY))
    with TestClient(app) as c:
        foreign, service, good = answered(app, "+88612345678"), answered(app, "10086"), answered(app, "13800000002")
        with app.state.sessionmaker() as db:  # before any call: the view names the number or the refusal
            seen = {oid: order_out(db.get(type(order(app, oid)), oid), "admin", now=MONDAY,
                                   calendar=app.state.work_orders.calendar) for oid in (foreign, service, good)}
        assert seen[good]["callback_number"] == "13800000002" and seen[good]["callback_refusal"] == ""
        assert "境外号码" in seen[foreign]["callback_refusal"] and seen[foreign]["callback_number"] == ""
        assert "特服号码" in seen[service]["callback_refusal"]
        ws, sock = connect(c, app)
        try:
            sent = app.state.callbacks.run_once()
            assert [cmd.order_id for cmd in sent] == [good]
            assert received(sock).target == "sip:13800000002@pbx.court.example"
            assert app.state.callbacks.run_once() == []  # the refused ones are not tried again
        finally:
            ws.__exit__(None, None, None)
    for oid, why in ((foreign, "境外号码"), (service, "特服号码")):
        o = order(app, oid)
        assert o.status == "answered" and o.callback_attempts == 0 and o.next_callback_at is None
        action, actor, note = history(app, oid)[-1]
        assert action == "callback_refused" and actor == "自动回访" and why in note and "请人工回访" in note, note
        with app.state.sessionmaker() as db:
            kinds = db.scalars(select(WorkOrderNotice.kind).where(WorkOrderNotice.order_id == oid,
                                                                 WorkOrderNotice.audience == "supervisor")).all()
        assert "callback_refused" in kinds
