"""Issue 15 on the hub's orders: a message's transcript arriving after its order, callback numbers checked
against the mainland dial plan, order numbers past 9,999 a day."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from sqlalchemy import select

from ivr.contract import CallOffered, MessageRecorded, MessageTranscribed
from tests.ops_support import post_events
from tests.work_order_support import at, database, staff, wait_for, wo_hub
from work_orders.models import WorkOrder

NOW = at(2026, 11, 30, 10)  # a Monday


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    h = wo_hub(tmp_path_factory.mktemp("wo-sec"), NOW)
    yield h
    h.stop()


@pytest.fixture(scope="module")
def users(hub):
    return staff(hub, {"民一庭": ["hd1"]})


def _order(hub, call_id: str) -> WorkOrder | None:
    with database(hub) as db:
        return db.scalar(select(WorkOrder).where(WorkOrder.call_id == call_id))


@pytest.mark.parametrize("purpose", ["complaint", "after_hours"])
def test_an_order_is_filed_from_the_message_and_its_transcript_follows(hub, users, purpose):
    call_id = f"tr-{purpose}"
    k = {"call_id": call_id, "worker": "w0"}
    recording = f"{call_id}-{purpose}.wav"
    msg = MessageRecorded(**k, ts=NOW + timedelta(seconds=40), node="m", purpose=purpose, recording=recording,
                          duration_s=9.0, transcript_pending=True)
    phone = {"complaint": "13812345678", "after_hours": "13812340000"}[purpose]  # not a repeat of the other
    post_events(hub, [CallOffered(**k, ts=NOW, caller=f"<sip:{phone}@10.0.0.5:5060>", callee="12368",
                                  source="10.0.0.5:5060"), msg])
    order = wait_for(lambda: _order(hub, call_id), what="the message's order")
    assert recording in order.content and order.recordings == [recording], order.content
    text = "法官态度不好，请督办处理"
    done = MessageTranscribed(**k, ts=NOW + timedelta(seconds=70), node="m", message_event_id=msg.event_id,
                              purpose=purpose, recording=recording, text=text)
    post_events(hub, [done])
    order = wait_for(lambda: (o := _order(hub, call_id)) and text in o.content and o, what="the transcript")
    assert f"（录音 {recording}）：{text}" in order.content and "转写中" not in order.content, order.content
    assert order.citizen_phone == phone  # the caller URI's user part, not 10.0.0.5:5060
    post_events(hub, [done])  # the worker re-sends its spool: stored once, the content unchanged
    post_events(hub, [MessageTranscribed(**{**done.model_dump(), "event_id": "again-" + call_id})])
    time.sleep(0.5)  # the hub's ordered writer
    assert _order(hub, call_id).content.count(text) == 1
