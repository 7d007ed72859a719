"""The worker <-> hub requests and replies (ivr/hub_api.py) are one set of models on both sides."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from agent_console.cases import desk, router
from agent_console.kb_match import IvrMatch, ivr_match
from court_cases.system import SECRET_MAX
from ivr import hub_api
from ivr.hub_api import KbChoice, KbMatch, KbMatchRequest, LookupReply, VerifyRequest


def test_the_hub_routes_parse_and_answer_with_the_shared_models():
    assert desk.LookupRequest is hub_api.LookupRequest and desk.VerifyReply is hub_api.VerifyReply
    assert router.lookup.__annotations__["req"] in ("LookupRequest", hub_api.LookupRequest)
    assert ivr_match.__annotations__["req"] in ("KbMatchRequest", KbMatchRequest)
    assert hub_api.SECRET_MAX == SECRET_MAX


def test_a_worker_parses_the_hubs_match_reply():
    reply = IvrMatch(query="诉讼费", decision="clarify", faq_id=None, score=0.4, margin=0.01, reason="low_margin",
                     offered=["F1", "option:5"], answer_text=None,
                     choices=[KbChoice(id="F1", title="诉讼费怎么交", answer_text="在立案窗口交。"),
                              KbChoice(id="option:5", title="投诉信访")])
    got = KbMatch.model_validate_json(reply.model_dump_json())
    assert got.offered_ids() == ["F1", "option:5"] and [c.option for c in got.choices] == [None, "5"]
    assert set(KbMatch.model_fields) <= set(IvrMatch.model_fields)


def test_requests_the_hub_would_refuse_are_refused_by_the_same_model():
    with pytest.raises(ValidationError):
        KbMatchRequest(text="x" * 501)
    with pytest.raises(ValidationError):
        VerifyRequest(number="2026*1#", secret="1" * (SECRET_MAX + 1))
    with pytest.raises(ValidationError):
        LookupReply.model_validate({"result": "found"})  # a reply without the sentence to speak
