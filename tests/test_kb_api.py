"""``/api/kb`` on a real SQLite file: roles, CRUD with versions, history (who/when), import/export."""

from __future__ import annotations

import hashlib
import io
import json

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy import text

from agent_console.app import create_app
from agent_console.auth.passwords import use_hasher
from agent_console.auth.users import create_user
from agent_console.config import HubConfig
from agent_console.kb.router import router as kb_router
from agent_console.models import utcnow
from hotline.db import make_engine, upgrade_engine

PASSWORD = "correct horse"
F1 = {"id": "F001", "category": "consult", "question": "怎么网上立案？", "variants": ["如何立案", "网上|立案"],
      "answer": "登录人民法院在线服务平台，选择“网上立案”。", "keywords": ["立案"]}
F2 = {"id": "F002", "category": "query", "question": "案件进度怎么查？", "variants": [],
      "answer": "拨打12368，按2查询。", "keywords": ["进度"]}


@pytest.fixture(scope="module")
def cheap_argon2():
    previous = use_hasher(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    yield
    use_hasher(previous)


@pytest.fixture(scope="module")
def hub_app(tmp_path_factory, cheap_argon2):
    engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('kbapi') / 'hub.db'}")
    upgrade_engine(engine)
    app = create_app(HubConfig(secret_key="k" * 32, worker_token="t", cookie_secure=False), engine)
    with app.state.sessionmaker() as db:
        for name, role in [("op", "operator"), ("sup", "supervisor"), ("adm", "admin"), ("hd", "handler")]:
            create_user(db, name, role, PASSWORD)
        db.commit()
    yield app
    engine.dispose()


@pytest.fixture
def hub(hub_app):
    """The module's hub with an empty knowledge base (one migration for the module keeps the tests fast)."""
    with hub_app.state.engine.begin() as conn:
        for table in ("kb_history", "kb_entries"):
            conn.execute(text(f"DELETE FROM {table}"))
    return hub_app


def as_user(app, name: str | None) -> TestClient:
    c = TestClient(app)
    if name:
        assert c.post("/api/auth/login", json={"username": name, "password": PASSWORD}).status_code == 200
    return c


def kb_state(app) -> tuple[list, str]:
    engine = app.state.engine
    with engine.connect() as conn:
        dump = [list(map(tuple, conn.execute(text(f"SELECT * FROM {t} ORDER BY 1")).all()))
                for t in ("kb_entries", "kb_history", "kb_revision")]
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    return dump, hashlib.sha256(open(engine.url.database, "rb").read()).hexdigest()


def test_roles(hub):
    adm = as_user(hub, "adm")
    assert adm.post("/api/kb/entries", json=F1).status_code == 201
    assert as_user(hub, None).get("/api/kb/entries").status_code == 401
    assert as_user(hub, "hd").get("/api/kb/entries").json()["detail"] == "权限不足"
    for name in ("op", "sup"):
        c = as_user(hub, name)
        assert c.get("/api/kb/entries").json()["total"] == 1
        assert c.get("/api/kb/entries/F001").json()["question"] == "怎么网上立案？"
        assert c.get("/api/kb/entries/F001/history").status_code == 200
        assert c.get("/api/kb/export?format=csv").status_code == 200
        before = kb_state(hub)
        changes = [c.post("/api/kb/entries", json=F2),
                   c.put("/api/kb/entries/F001", json={**F1, "answer": "改过的答案内容", "version": 1}),
                   c.patch("/api/kb/entries/F001", json={"enabled": False}),
                   c.delete("/api/kb/entries/F001"),
                   c.post("/api/kb/import", files={"file": ("kb.json", json.dumps([F2]).encode(), "application/json")})]
        for r in changes:
            assert r.status_code == 403 and r.json()["detail"] == "权限不足", (name, r.request.method, r.text)
        assert kb_state(hub) == before


def test_admin_crud_with_versions_history_and_diff(hub):
    adm = as_user(hub, "adm")
    t0 = utcnow()
    r = adm.post("/api/kb/entries", json={**F1, "enabled": False})
    assert r.status_code == 201 and r.json()["version"] == 1 and r.json()["enabled"] is False
    assert r.json()["updated_by"] == "adm" and r.json()["variants"] == ["如何立案", "网上|立案"]
    assert adm.post("/api/kb/entries", json=F1).status_code == 409
    assert adm.post("/api/kb/entries", json=F2).status_code == 201
    rev = adm.get("/api/kb/revision").json()["revision"]

    r = adm.put("/api/kb/entries/F001", json={**F1, "answer": "请到诉讼服务中心立案窗口办理。", "version": 1})
    assert r.status_code == 200 and r.json()["version"] == 2
    r = adm.put("/api/kb/entries/F001", json={**F1, "answer": "并发修改的答案内容", "version": 1})
    assert r.status_code == 409 and "已被他人修改" in r.json()["detail"]
    r = adm.put("/api/kb/entries/F001", json={**F1})
    assert r.status_code == 422 and "version" in r.json()["detail"]
    r = adm.patch("/api/kb/entries/F001", json={"enabled": True, "version": 2})
    assert r.status_code == 200 and r.json()["enabled"] is True and r.json()["version"] == 3
    assert adm.get("/api/kb/revision").json()["revision"] == rev + 2

    listed = adm.get("/api/kb/entries", params={"q": "诉讼服务中心"}).json()
    assert listed["total"] == 1 and listed["items"][0]["id"] == "F001"
    assert [e["id"] for e in adm.get("/api/kb/entries", params={"category": "query"}).json()["items"]] == ["F002"]
    assert adm.get("/api/kb/entries", params={"enabled": "false"}).json()["total"] == 0
    r = adm.get("/api/kb/entries", params={"category": "nope"})
    assert r.status_code == 422 and "category" in r.json()["detail"]

    assert adm.delete("/api/kb/entries/F001", params={"version": 2}).status_code == 409
    assert adm.delete("/api/kb/entries/F001").status_code == 204
    r = adm.get("/api/kb/entries/F001")
    assert r.status_code == 404 and r.json()["detail"] == "未找到知识条目 F001"

    hist = adm.get("/api/kb/entries/F001/history").json()  # still there after the delete
    assert [(h["version"], h["action"], h["who"]) for h in hist] == [
        (1, "create", "adm"), (2, "update", "adm"), (3, "enable", "adm"), (4, "delete", "adm")]
    assert all(t0.isoformat()[:16] <= h["at"][:16] for h in hist)
    assert hist[1]["changes"] == {"answer": {"before": F1["answer"], "after": "请到诉讼服务中心立案窗口办理。"}}
    assert hist[3]["after"] is None
    d = adm.get("/api/kb/entries/F001/diff", params={"from": 1, "to": 3}).json()
    assert d == {"answer": {"before": F1["answer"], "after": "请到诉讼服务中心立案窗口办理。"},
                 "enabled": {"before": False, "after": True}}
    assert adm.get("/api/kb/entries/F404/history").status_code == 404


@pytest.mark.parametrize("body,fragment", [
    ({**F1, "category": "faq"}, "category 字段无效：“faq” 不是有效类别"),
    ({**F1, "question": ""}, "question 字段不能为空"),
    ({**F1, "extra": 1}, "extra 字段不允许"),
    ({**F1, "keywords": "立案"}, "keywords 字段类型错误"),
    ({k: v for k, v in F1.items() if k != "answer"}, "answer 字段缺失"),
    ({**F1, "enabled": "yes"}, "enabled 字段类型错误"),
    ([F1], "应为一个 JSON 对象"),
])
def test_create_errors_are_chinese_and_name_the_field(hub, body, fragment):
    adm = as_user(hub, "adm")
    before = kb_state(hub)
    r = adm.post("/api/kb/entries", json=body)
    assert r.status_code == 422 and fragment in r.json()["detail"], r.text
    assert kb_state(hub) == before


@pytest.mark.parametrize("fmt", ["json", "csv", "xlsx"])
def test_import_export_round_trip(hub, fmt):
    adm = as_user(hub, "adm")
    for e in (F1, F2):
        adm.post("/api/kb/entries", json=e)
    r = adm.get("/api/kb/export", params={"format": fmt})
    assert r.status_code == 200 and f".{fmt}" in r.headers["content-disposition"]
    exported = r.content
    if fmt == "xlsx":
        assert load_workbook(io.BytesIO(exported)).active["D2"].value == "如何立案|网上\\|立案"
    assert adm.delete("/api/kb/entries/F001").status_code == 204
    r = adm.post("/api/kb/import", files={"file": (f"kb.{fmt}", exported, "application/octet-stream")})
    assert r.status_code == 200, r.text
    assert {k: r.json()[k] for k in ("total", "created", "unchanged")} == {"total": 2, "created": 1, "unchanged": 1}
    assert r.json()["message"].startswith("共 2 条")
    got = adm.get("/api/kb/entries/F001").json()
    assert {k: got[k] for k in F1} == F1 and got["version"] == 3  # re-created after version 2 (the delete)
    assert adm.get("/api/kb/entries/F001/history").json()[-1]["action"] == "import"

    r = adm.post("/api/kb/import", params={"replace": "true"},
                 files={"file": ("only.json", json.dumps([F2], ensure_ascii=False).encode(), "application/json")})
    assert r.status_code == 200 and r.json()["deleted"] == 1
    assert [e["id"] for e in adm.get("/api/kb/entries").json()["items"]] == ["F002"]


@pytest.mark.parametrize("name,data,fragment,row,field", [
    ("kb.csv", "id,category,question,variants,answer,keywords\nF1,consult,怎么立案,,到立案窗口办理,\n"
               "F2,bogus,怎么交费,,网上交费,\n".encode(), "第3行 category 字段无效", 3, "category"),
    ("kb.csv", "id,category,question,answer\nF1,consult,怎么立案,到立案窗口办理\n".encode("gbk"),
     "文件编码错误", None, None),
    ("kb.json", json.dumps([F2, F2]).encode(), "第2条 id 字段重复", 2, "id"),
    ("kb.json", json.dumps([{**F2, "question": " "}]).encode(), "第1条 question 字段不能为空", 1, "question"),
    ("kb.xlsx", b"not a zip", "无法读取 XLSX 文件", None, None),
    ("kb.csv", "id,category,question,answer,note\nF1,consult,怎么立案,到立案窗口办理,x\n".encode(),
     "第1行 note 字段不允许", 1, "note"),
    ("kb.txt", b"whatever", "无法识别的文件类型", None, None),
])
def test_rejected_import_changes_nothing(hub, name, data, fragment, row, field):
    adm = as_user(hub, "adm")
    for e in (F1, F2):
        adm.post("/api/kb/entries", json=e)
    before = kb_state(hub)
    for replace in ("false", "true"):
        r = adm.post("/api/kb/import", params={"replace": replace},
                     files={"file": (name, data, "application/octet-stream")})
        assert r.status_code == 422 and fragment in r.json()["detail"], r.text
        assert (r.json()["errors"][0]["row"], r.json()["errors"][0]["field"]) == (row, field)
    assert kb_state(hub) == before
    r = adm.post("/api/kb/import")
    assert r.status_code == 422 and r.json()["detail"] == "请选择要导入的文件"
    assert adm.get("/api/kb/export", params={"format": "pdf"}).status_code == 422


def test_every_kb_route_needs_login(hub):
    """Default deny, as tests/test_hub_auth.py checks for the whole app (with a sample {entry_id})."""
    c = as_user(hub, None)
    checked = 0
    for route in kb_router.routes:
        path = route.path
        assert path.startswith("/api/kb/")
        for method in route.methods - {"HEAD", "OPTIONS"}:
            r = c.request(method, path.replace("{entry_id}", "F001"))
            assert r.status_code == 401 and r.json()["detail"] == "请先登录", (method, path, r.status_code)
            checked += 1
    assert checked >= 10
