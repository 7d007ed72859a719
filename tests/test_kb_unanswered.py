"""Unanswered questions: the clustering (knowledge_base.unanswered) and ``GET /api/kb/unanswered`` on a real
SQLite hub whose call events arrive through the workers' ingest path (``POST /internal/events``)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from agent_console.app import create_app
from agent_console.auth.passwords import use_hasher
from agent_console.auth.users import create_user
from agent_console.config import HubConfig
from hotline.db import make_engine, upgrade_engine
from hotline.hub_main import load_default_kb
from ivr.contract import CallEnded, CallOffered, EventBatch, HandoffRequested, KbDecided, SpeechHeard
from knowledge_base.matcher import Matcher, default_kb_path, load_entries
from knowledge_base.unanswered import Utterance, cluster_utterances

T0 = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)


def utt(text: str, minutes: float = 0, call: str = "") -> Utterance:
    return Utterance(text=text, at=T0 + timedelta(minutes=minutes), call_id=call)


# ------------------------------------------------------------------------------------------ clustering
def test_empty_input_gives_no_clusters():
    assert cluster_utterances([]) == []
    assert cluster_utterances([utt("嗯"), utt("那个"), utt("  ")]) == []  # nothing an entry could answer


def test_homophones_fall_together_and_unrelated_questions_stay_apart():
    clusters = cluster_utterances([
        utt("诉讼费什么时候退", 1, "c1"), utt("速送费什么时候退", 2, "c2"), utt("诉讼费啥时候退啊", 3, "c3"),
        utt("社保卡丢了怎么补办", 4, "c4"), utt("身份证丢了怎么补办", 5, "c5"), utt("今天天气怎么样", 6, "c6"),
    ])
    groups = sorted(sorted(m.text for m in c.members) for c in clusters)
    assert groups == [["今天天气怎么样"], ["社保卡丢了怎么补办"],
                      sorted(["诉讼费什么时候退", "速送费什么时候退", "诉讼费啥时候退啊"]), ["身份证丢了怎么补办"]]
    assert clusters[0].count == 3 and clusters[0].call_ids == ["c3", "c2", "c1"]


def test_counts_identical_texts_once_with_their_count_and_picks_the_most_central_representative():
    clusters = cluster_utterances([
        utt("速送费什么时候退", 1), utt("诉讼费什么时候退？", 2), utt("诉讼费什么时候退", 3),
        utt("诉讼费 什么时候退", 9), utt("喂诉讼费什么时候能退给我", 4), utt("户口怎么迁过来", 5),
    ])
    first = clusters[0]
    assert first.count == 5
    # punctuation and spaces do not make another wording; the most frequent raw form (then the latest) names it
    assert [(m.text, m.count) for m in first.members] == [
        ("诉讼费 什么时候退", 3), ("喂诉讼费什么时候能退给我", 1), ("速送费什么时候退", 1)]
    assert first.representative == "诉讼费 什么时候退"
    assert (first.first_seen, first.last_seen) == (T0 + timedelta(minutes=1), T0 + timedelta(minutes=9))
    assert first.members[0].last_seen == T0 + timedelta(minutes=9)
    assert [(c.representative, c.count) for c in clusters[1:]] == [("户口怎么迁过来", 1)]


def test_order_is_count_then_last_seen_and_does_not_depend_on_input_order():
    items = [utt("护照在哪里办理", 50), utt("公积金怎么提取", 10), utt("公积金怎么提取", 20),
             utt("驾照扣分怎么处理", 60), utt("医保报销比例是多少", 5), utt("户口怎么迁过来", 30)]
    clusters = cluster_utterances(items)
    assert [(c.representative, c.count) for c in clusters] == [
        ("公积金怎么提取", 2), ("驾照扣分怎么处理", 1), ("护照在哪里办理", 1), ("户口怎么迁过来", 1),
        ("医保报销比例是多少", 1)]
    assert cluster_utterances(list(reversed(items))) == clusters


def test_the_matchers_best_entry_is_suggested():
    matcher = Matcher.build(load_entries(default_kb_path()))
    clusters = cluster_utterances([utt("诉讼费能不能退一部分"), utt("今天天气怎么样")], match=matcher.match)
    got = {c.representative: c.candidate for c in clusters}
    assert got["诉讼费能不能退一部分"] is not None and got["诉讼费能不能退一部分"].faq_id == "F012"
    weather = got["今天天气怎么样"]
    assert weather is None or weather.decision == "handoff"


def test_five_thousand_utterances_cluster_quickly():
    import random

    rnd = random.Random(5)
    base = ["诉讼费什么时候退", "社保卡丢了怎么补办", "法院食堂对外开放吗", "护照在哪里办理", "判决书一直没收到怎么办",
            "离婚要准备哪些材料", "执行款什么时候到账", "我的案子审到哪一步了", "法院几点上班", "怎么申请法律援助"]
    noise = "的了是在我有这个来上到说们时要就出会可也你对生能而子那得于着下自之年过发后作里"
    items = []
    for k in range(5000):
        t = list(rnd.choice(base))
        for _ in range(rnd.randint(0, 2)):
            t[rnd.randrange(len(t))] = rnd.choice(noise)
        items.append(utt("".join(t) + rnd.choice(["", "啊", "呢", "谢谢"]), rnd.randint(0, 40000), f"c{k}"))
    start = time.perf_counter()
    clusters = cluster_utterances(items)
    elapsed = time.perf_counter() - start
    assert sum(c.count for c in clusters) == 5000
    assert elapsed < 5.0, elapsed  # 0.3 s measured on 2 cores (see the module docstring)
    assert clusters[0].count > 200  # the ten questions dominate despite the noise


# ------------------------------------------------------------------------------------------ the API
TOKEN = "worker-token-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PASSWORD = "password1"


@pytest.fixture
def hub(tmp_path):
    previous = use_hasher(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    engine = make_engine(f"sqlite:///{tmp_path / 'hub.db'}")
    upgrade_engine(engine)
    assert load_default_kb(engine) >= 74
    app = create_app(HubConfig(secret_key="k" * 32, worker_token=TOKEN, cookie_secure=False), engine)
    with app.state.sessionmaker() as db:
        for name, role in [("op", "operator"), ("sup", "supervisor"), ("adm", "admin"), ("hd", "handler")]:
            create_user(db, name, role, PASSWORD)
        db.commit()
    yield app
    engine.dispose()
    use_hasher(previous)


def as_user(app, name: str | None) -> TestClient:
    c = TestClient(app)
    if name:
        assert c.post("/api/auth/login", json={"username": name, "password": PASSWORD}).status_code == 200
    return c


def consult_call(call_id: str, start: datetime, *, heard: str, decision: str, query: str | None = None,
                 then_handoff: bool = True, extra: list | None = None) -> list:
    """A caller in menu 2: speech heard, the KB's decision, maybe a handoff to staff, hang-up."""
    k = dict(call_id=call_id, worker="w0")
    at = lambda s: start + timedelta(seconds=s)  # noqa: E731
    events = [CallOffered(**k, ts=at(0), caller="13800000000", callee="12368", source="127.0.0.1:5070"),
              SpeechHeard(**k, ts=at(10), node="consult", kind="partial", text=heard[:2]),
              SpeechHeard(**k, ts=at(11), node="consult", kind="final", text=heard),
              KbDecided(**k, ts=at(12), node="consult", decision=decision,
                        faq_id=None if decision == "handoff" else "F056", score=0.5,
                        **({} if query is None else {"query": query}))]
    events += extra or []
    if then_handoff:
        events.append(HandoffRequested(**k, ts=at(30), node="consult_staff", reason="consult_question",
                                       category="consult"))
    events.append(CallEnded(**k, ts=at(40), cause="handoff_unavailable", side="ivr"))
    return events


def post(client: TestClient, events: list) -> None:
    r = client.post("/internal/events", json=EventBatch(events=events).model_dump(mode="json"), headers=AUTH)
    assert r.status_code == 200 and r.json()["accepted"] == len(events), r.text


def seed(hub) -> None:
    now = datetime.now(UTC)
    day = now - timedelta(days=1)
    c = TestClient(hub)
    post(c, consult_call("c1", day, heard="社保卡丢了怎么补办", decision="handoff", query="社保卡丢了怎么补办"))
    post(c, consult_call("c2", day + timedelta(hours=1), heard="社保卡掉了怎么补办", decision="confirm",
                         query="社保卡掉了怎么补办"))  # "您是想问……吗" → no → staff
    # a worker from before the query field: the text is the final heard at the decision's node
    post(c, consult_call("c3", day + timedelta(hours=2), heard="社保卡丢了怎么补办呀", decision="handoff"))
    post(c, consult_call("c4", day + timedelta(hours=3), heard="法院食堂对外开放吗", decision="handoff",
                         query="法院食堂对外开放吗"))
    post(c, consult_call("c5", day + timedelta(hours=4), heard="法院食堂对外开放吗？", decision="handoff",
                         query="法院食堂对外开放吗？"))
    post(c, consult_call("c6", day + timedelta(hours=5), heard="护照在哪里办理", decision="handoff",
                         query="护照在哪里办理"))
    post(c, consult_call("c7", now - timedelta(days=40), heard="护照在哪里办理", decision="handoff",
                         query="护照在哪里办理"))  # outside the last 30 days
    # answered and settled (pressed 1): not unanswered
    post(c, consult_call("c8", day, heard="法院停车场收费吗", decision="answer", query="法院停车场收费吗",
                         then_handoff=False))
    # handed off when the hub was unreachable, but the KB answers it now: learnt
    post(c, consult_call("c9", day, heard="诉讼费什么时候退", decision="handoff", query="诉讼费什么时候退"))
    # two questions in one call: the handoff follows the second, so the first was settled
    post(c, consult_call("c10", day, heard="法院门口能停车吗", decision="confirm", query="法院门口能停车吗", extra=[
        KbDecided(call_id="c10", worker="w0", ts=day + timedelta(seconds=20), node="consult", decision="answer",
                  faq_id="F099", query="外来人员能在法院食堂吃饭吗")]))


def test_unanswered_clusters_with_counts_roles_and_a_promoted_cluster_disappears(hub):
    seed(hub)
    assert as_user(hub, None).get("/api/kb/unanswered").json()["detail"] == "请先登录"
    for name in ("op", "hd"):
        r = as_user(hub, name).get("/api/kb/unanswered")
        assert r.status_code == 403 and r.json()["detail"] == "权限不足", name
    assert as_user(hub, "sup").get("/api/kb/unanswered").status_code == 200

    adm = as_user(hub, "adm")
    data = adm.get("/api/kb/unanswered").json()
    assert [(c["representative"], c["count"]) for c in data["clusters"]] == [
        ("社保卡丢了怎么补办", 3), ("法院食堂对外开放吗？", 2), ("护照在哪里办理", 1),
        ("外来人员能在法院食堂吃饭吗", 1)]
    social, canteen = data["clusters"][:2]
    # homophone-like wordings together, the newest first; the text of c3 came from its speech_heard event
    assert [(m["text"], m["count"]) for m in social["members"]] == [
        ("社保卡丢了怎么补办呀", 1), ("社保卡掉了怎么补办", 1), ("社保卡丢了怎么补办", 1)]
    assert social["call_ids"] == ["c3", "c2", "c1"]
    # the semantic matcher offers F056 among close entries (clarify) where the lexical one confirmed it
    assert social["candidate"]["faq_id"] == "F056" and social["candidate"]["decision"] in ("confirm", "clarify")
    f056 = adm.get("/api/kb/entries/F056").json()
    assert (social["suggested_category"], social["candidate_question"]) == (f056["category"], f056["question"])
    assert [(m["text"], m["count"]) for m in canteen["members"]] == [("法院食堂对外开放吗？", 2)]  # punctuation only
    assert datetime.fromisoformat(canteen["last_seen"]) > datetime.fromisoformat(canteen["first_seen"])
    # settled, followed by a later question, or answered by the knowledge base now: not listed
    texts = {m["text"] for c in data["clusters"] for m in c["members"]}
    assert texts.isdisjoint({"法院停车场收费吗", "法院门口能停车吗", "诉讼费什么时候退"})
    assert (data["utterances"], data["learnt"], data["total_clusters"], data["days"]) == (7, 1, 4, 30)

    assert [c["count"] for c in adm.get("/api/kb/unanswered", params={"min_count": 2}).json()["clusters"]] == [3, 2]
    older = adm.get("/api/kb/unanswered", params={"days": 60}).json()["clusters"]
    assert [(c["representative"], c["count"]) for c in older] == [  # equal counts: the latest asked first
        ("社保卡丢了怎么补办", 3), ("护照在哪里办理", 2), ("法院食堂对外开放吗？", 2),
        ("外来人员能在法院食堂吃饭吗", 1)]
    assert len(adm.get("/api/kb/unanswered", params={"limit": 1}).json()["clusters"]) == 1
    assert adm.get("/api/kb/unanswered", params={"days": 0}).status_code == 422

    # the admin promotes the cluster to an entry: once the matcher has it, the cluster is gone
    entry = {"id": "T1", "category": social["suggested_category"], "question": social["representative"],
             "variants": [m["text"] for m in social["members"] if m["text"] != social["representative"]],
             "answer": "社保卡补办请到社保经办机构办理，本院无法办理。"}
    assert adm.post("/api/kb/entries", json=entry).status_code == 201
    deadline = time.monotonic() + 5  # the live matcher follows the database within about a second
    while True:
        data = adm.get("/api/kb/unanswered").json()
        if data["clusters"][0]["representative"] != "社保卡丢了怎么补办" or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert [(c["representative"], c["count"]) for c in data["clusters"]] == [
        ("法院食堂对外开放吗？", 2), ("护照在哪里办理", 1), ("外来人员能在法院食堂吃饭吗", 1)]
    assert (data["utterances"], data["learnt"]) == (4, 4)
