"""The semantic knowledge base on a real SQLite file with the real embedding model: spoken titles (made, edited,
refused with the field named), vectors computed when an entry is saved and re-made for another model, the IVR's
match with a menu and the offered choices, and a missing or damaged model stopping start-up with the file named."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import text, update

from agent_console.app import create_app
from agent_console.auth.passwords import use_hasher
from agent_console.auth.users import create_user
from agent_console.config import HubConfig
from hotline.db import make_engine, upgrade_engine
from knowledge_base import embedding
from knowledge_base.embedding import MODEL_NAME, EmbeddingModelError, stored_texts, unpack, vectors_tag
from knowledge_base.entry import FaqEntry
from knowledge_base.io import load_default_if_empty
from knowledge_base.models import KbEntry
from knowledge_base.settings import MatcherSettings
from knowledge_base.title import TITLE_MAX, make_title

PASSWORD = "correct horse"
FEE = {"id": "F008", "category": "consult", "question": "诉讼费怎么交", "variants": ["诉讼费在哪里缴纳"],
       "answer": "诉讼费可以在立案时到窗口缴纳，也可以网上缴纳。", "keywords": ["诉讼费"]}


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    previous = use_hasher(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('kbsem') / 'hub.db'}")
    upgrade_engine(engine)
    app = create_app(HubConfig(secret_key="k" * 32, worker_token="tok", cookie_secure=False), engine)
    with app.state.sessionmaker() as db:
        create_user(db, "adm", "admin", PASSWORD)
        load_default_if_empty(db, embedder=app.state.kb_matcher.embedder)
        db.commit()
    yield app
    engine.dispose()
    use_hasher(previous)


def admin(app) -> TestClient:
    c = TestClient(app)
    assert c.post("/api/auth/login", json={"username": "adm", "password": PASSWORD}).status_code == 200
    return c


def row(app, entry_id: str) -> KbEntry:
    with app.state.sessionmaker() as db:
        e = db.get(KbEntry, entry_id)
        db.expunge(e)
        return e


def test_a_query_embedded_again_is_the_same_read_only_vector_and_the_cache_is_bounded(monkeypatch):
    e = embedding.get_embedder()
    first = e.query("诉讼费什么时候退")
    assert e.query("诉讼费什么时候退") is first  # the hub's second look at one final costs no encoder pass
    assert not first.flags.writeable
    other = e.query("怎么申请强制执行")
    assert float(first @ other) < 0.99 and abs(float(first @ first) - 1.0) < 1e-3
    monkeypatch.setattr(embedding, "QUERY_CACHE", 2)
    for t in ("一", "二", "三"):
        e.query(t)
    assert len(e._queries) <= 2 and "诉讼费什么时候退" not in e._queries


def test_titles_are_made_short_and_deterministic():
    assert make_title("去法院立案需要带哪些材料") == "去法院立案需要带哪些材料"
    assert make_title("请问，交不起诉讼费可以申请缓交减交免交吗？") == "交不起诉讼费可以申请缓交减交免交"
    long = "我的案子判决以后对方一直不履行，我该怎么申请强制执行呢"
    assert make_title(long) == make_title(long) == "我的案子判决以后对方一直不履行"
    assert len(make_title(long)) <= TITLE_MAX
    assert FaqEntry.model_validate(FEE).title == "诉讼费怎么交"
    assert FaqEntry.model_validate({**FEE, "title": "交诉讼费"}).title == "交诉讼费"


def test_entry_vectors_are_computed_when_saved_and_follow_the_texts(hub):
    adm = admin(hub)
    body = {**FEE, "id": "S001", "question": "网上缴纳诉讼费的步骤", "title": "网上交诉讼费"}
    r = adm.post("/api/kb/entries", json=body)
    assert r.status_code == 201, r.text
    assert r.json()["title"] == "网上交诉讼费"
    e = row(hub, "S001")
    vec = unpack(e.embedding)
    texts = stored_texts(e.title, e.question, e.variants, e.answer)  # the texts, then the answer
    assert e.embedding_model == vectors_tag(MODEL_NAME) and vec is not None and vec.shape == (len(texts), 384)
    assert np.allclose(np.linalg.norm(vec, axis=1), 1.0, atol=0.01)
    # a change of the answer re-makes its vector (the re-ranker compares callers' words with it), not the others
    r = adm.put("/api/kb/entries/S001", json={**body, "answer": "登录诉讼服务网，按提示缴纳。", "version": 1})
    assert r.status_code == 200
    changed = unpack(row(hub, "S001").embedding)
    assert np.allclose(changed[:-1], vec[:-1], atol=1e-3) and not np.allclose(changed[-1], vec[-1], atol=1e-2)
    r = adm.put("/api/kb/entries/S001", json={**body, "variants": ["怎么在手机上交诉讼费"], "version": 2})
    assert r.status_code == 200
    after = row(hub, "S001")
    assert after.embedding != e.embedding and unpack(after.embedding).shape == (4, 384)
    # the new entry answers at once (the live matcher follows the database)
    hub.state.kb_matcher._checked = 0.0
    assert "S001" in hub.state.kb_matcher.current().faq_ids


def test_vectors_of_another_model_are_remade_at_the_next_rebuild(hub):
    with hub.state.sessionmaker() as db:
        db.execute(update(KbEntry).where(KbEntry.id == "F001").values(embedding_model="some-older-model"))
        db.execute(update(KbEntry).where(KbEntry.id == "F002").values(embedding=None))
        db.execute(text("UPDATE kb_revision SET revision = revision + 1"))
        db.commit()
    live = hub.state.kb_matcher
    live._checked = 0.0
    live.current()
    assert row(hub, "F001").embedding_model == vectors_tag(MODEL_NAME) and row(hub, "F002").embedding is not None


@pytest.mark.parametrize(("body", "field", "words"), [
    ({"title": "这是一个远远超过十六个字的标题用来测试长度限制"}, "title", "太长"),
    ({"title": "  "}, "title", "不能为空"),
    ({"question": ""}, "question", "不能为空"),
    ({"question": "问" * 201}, "question", "太长"),
])
def test_bad_title_or_question_is_refused_with_the_field_named(hub, body, field, words):
    adm = admin(hub)
    r = adm.post("/api/kb/entries", json={**FEE, "id": "S404", **body})
    assert r.status_code == 422 and field in r.json()["detail"] and words in r.json()["detail"], r.text
    assert adm.get("/api/kb/entries/S404").status_code == 404  # nothing stored


def test_import_names_the_title_field_and_csv_blank_title_is_made(hub):
    adm = admin(hub)
    bad = [{**FEE, "id": "S010"}, {**FEE, "id": "S011", "title": "标" * 17}]
    r = adm.post("/api/kb/import", files={"file": ("kb.json", json.dumps(bad, ensure_ascii=False).encode(),
                                                   "application/json")})
    assert r.status_code == 422
    assert (r.json()["errors"][0]["row"], r.json()["errors"][0]["field"]) == (2, "title"), r.json()
    assert adm.get("/api/kb/entries/S010").status_code == 404
    csv = ("id,category,question,variants,answer,keywords,title\r\n"
           "S012,consult,交不起诉讼费可以申请缓交吗,,可以申请缓交、减交或者免交。,,\r\n").encode()
    r = adm.post("/api/kb/import", files={"file": ("kb.csv", csv, "text/csv")})
    assert r.status_code == 200, r.text
    e = adm.get("/api/kb/entries/S012").json()
    assert e["title"] == "交不起诉讼费可以申请缓交吗"
    assert row(hub, "S012").embedding_model == vectors_tag(MODEL_NAME)  # embedded on import
    exported = adm.get("/api/kb/export", params={"format": "json"}).json()
    assert next(x for x in exported if x["id"] == "S012")["title"] == "交不起诉讼费可以申请缓交吗"


def test_ivr_match_with_a_menu_and_offered_choices(hub):
    worker = TestClient(hub)
    auth = {"Authorization": "Bearer tok"}
    menu = {"name": "main", "options": [{"key": "5", "title": "投诉信访", "phrases": ["我要投诉", "投诉法官"]},
                                        {"key": "1", "title": "案件查询", "phrases": ["我要查案件进度"]}]}
    r = worker.post("/internal/kb/match", json={"text": "我要投诉", "menu": menu, "asr_confidence": 0.9},
                    headers=auth)
    assert r.status_code == 200, r.text
    j = r.json()
    assert (j["decision"], j["option"], j["faq_id"], j["offered"], j["choices"]) == ("answer", "5", None, [], [])
    r = worker.post("/internal/kb/match", json={"text": "判决书", "menu": None}, headers=auth)
    j = r.json()
    assert j["decision"] == "clarify" and j["offered"][0] == "F056", j
    assert [c["id"] for c in j["choices"]] == j["offered"]
    first = j["choices"][0]
    assert first["title"] == row(hub, "F056").title and first["answer_text"] == row(hub, "F056").answer
    assert all(c["title"] and c["answer_text"] for c in j["choices"])
    r = worker.post("/internal/kb/match", json={"text": "执行款什么时候能到啊"}, headers=auth)
    j = r.json()
    assert (j["decision"], j["faq_id"]) == ("answer", "F046") and j["answer_text"] and j["question_text"]
    assert worker.post("/internal/kb/match", json={"text": "x" * 501}, headers=auth).status_code == 422
    assert worker.post("/internal/kb/match", json={"text": "我要投诉"}).status_code == 401


def _broken_model(monkeypatch, tmp_path, content: bytes | None):
    path = tmp_path / "e5-small-q4.bin"
    if content is not None:
        path.write_bytes(content)
    real = embedding._record()
    monkeypatch.setattr(embedding, "_record", lambda: (path, real[1], real[2]))
    return path


@pytest.mark.parametrize("content", [None, b"not a model"])
def test_missing_or_corrupt_model_stops_startup_with_the_file_named(monkeypatch, tmp_path, content):
    from hotline.doctor import check_all
    from hotline.hub_main import build_server
    from hotline.settings import Settings

    path = _broken_model(monkeypatch, tmp_path, content)
    with pytest.raises(EmbeddingModelError, match=str(path)):
        embedding.check_model()
    settings = Settings(home=tmp_path / "home")
    with pytest.raises(EmbeddingModelError, match="missing" if content is None else "corrupt"):
        build_server(settings)
    check = next(c for c in check_all(settings) if c.name == "kb model")
    assert check.status == "fail" and str(path) in check.detail

    # kb.semantic = false: no model needed; the hub starts and the matcher works lexically
    lexical = Settings(home=tmp_path / "home2", kb=MatcherSettings(semantic=False))
    server = build_server(lexical)
    live = server.config.app.state.kb_matcher
    assert live.embedder is None
    r = live.match("法院的电话是多少")
    assert (r.decision, r.faq_id, r.probability) == ("answer", "F062", None)
    server.config.app.state.engine.dispose()
    assert next(c for c in check_all(lexical) if c.name == "kb model").status == "info"


def test_the_warming_thread_rebuilds_after_an_edit_before_any_caller_asks(hub):
    """The hub keeps the matcher warm: after a change of the KB the background thread rebuilds it (and runs a
    query through it) on its own, so the next caller's match finds the new matcher already built."""
    live = hub.state.kb_matcher
    live.start_warming(interval_s=0.1)
    try:
        before = live.current()
        with hub.state.sessionmaker() as db:
            db.execute(text("UPDATE kb_revision SET revision = revision + 1"))
            db.commit()
        deadline = time.monotonic() + 60
        while live._matcher is before and time.monotonic() < deadline:
            time.sleep(0.1)
        assert live._matcher is not before
        assert live.match("诉讼费怎么交").faq_id == "F008"
    finally:
        live.stop_warming()
