"""The FAQ store on a real SQLite file and a real PostgreSQL database: CRUD, optimistic versions, history
(who/when), diff, the change stamp."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select

from hotline.db import make_engine, session_factory
from hotline.hub_main import load_default_kb
from knowledge_base.entry import FaqEntry
from knowledge_base.io import KbImportError, load_default_if_empty
from knowledge_base.models import KbHistory, utcnow
from knowledge_base.store import (
    EntryExists,
    EntryNotFound,
    KbError,
    VersionConflict,
    VersionNotFound,
    apply_import,
    count_entries,
    create_entry,
    delete_entry,
    diff,
    get_entry,
    history,
    kb_stamp,
    list_entries,
    set_enabled,
    update_entry,
)


def faq(id: str = "F001", **kw) -> FaqEntry:
    base = {"category": "consult", "question": "怎么立案？", "variants": ["如何立案", "网上立案怎么弄"],
            "answer": "您可以通过人民法院在线服务平台网上立案，也可以到诉讼服务中心现场立案。",
            "keywords": ["立案"]}
    return FaqEntry(id=id, **{**base, **kw})


@pytest.fixture
def engine(migrated_db_url):
    eng = make_engine(migrated_db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def db(engine):
    with session_factory(engine)() as s:
        yield s


def test_create_get_list_search_filter(db):
    t0 = utcnow()
    create_entry(db, faq("F001"), "adm")
    create_entry(db, faq("F002", category="query", question="案件进度怎么查询？", variants=["查案子进度"],
                         keywords=["进度", "查询"], answer="拨打12368或登录诉讼服务网查询案件进度。"), "adm")
    create_entry(db, faq("F010", category="urge", question="法官一直不回电话怎么办？", variants=[],
                         keywords=["催办"], answer="您可以申请催办，我们会在三个工作日内反馈。"), "adm",
                 enabled=False)
    db.commit()
    e = get_entry(db, "F001")
    assert e is not None and e.version == 1 and e.enabled and e.updated_by == "adm"
    assert e.variants == ["如何立案", "网上立案怎么弄"] and e.keywords == ["立案"]
    assert t0 <= e.created_at <= utcnow() and e.created_at.tzinfo is not None
    assert get_entry(db, "nope") is None

    assert [x.id for x in list_entries(db)] == ["F001", "F002", "F010"]
    assert [x.id for x in list_entries(db, category="query")] == ["F002"]
    assert [x.id for x in list_entries(db, enabled=False)] == ["F010"]
    assert [x.id for x in list_entries(db, enabled=True)] == ["F001", "F002"]
    assert [x.id for x in list_entries(db, q="网上立案怎么弄")] == ["F001"]  # a variant, Chinese
    assert [x.id for x in list_entries(db, q="催办")] == ["F010"]  # a keyword
    assert [x.id for x in list_entries(db, q="f002")] == ["F002"]  # id, case-insensitive
    assert [x.id for x in list_entries(db, q="12368 进度")] == ["F002"]  # all words
    assert list_entries(db, q="100%") == [] and list_entries(db, q="_") == []  # LIKE wildcards are literal
    assert [x.id for x in list_entries(db, limit=2, offset=1)] == ["F002", "F010"]
    assert count_entries(db) == 3 and count_entries(db, q="立案") == 1

    with pytest.raises(EntryExists, match="F001 已存在"):
        create_entry(db, faq("F001"), "adm")


def test_update_is_optimistic_and_history_records_who_and_when(db):
    create_entry(db, faq(), "alice")
    db.commit()
    t0 = utcnow()
    e = update_entry(db, "F001", faq(answer="请携带起诉状和身份证明到立案窗口办理。"), "bob", expected_version=1)
    db.commit()
    assert e.version == 2 and e.updated_by == "bob"
    with pytest.raises(VersionConflict, match="当前版本 2，您编辑的是版本 1"):
        update_entry(db, "F001", faq(answer="另一个管理员同时改的答案内容"), "carol", expected_version=1)
    with pytest.raises(KbError, match="不能修改条目编号"):
        update_entry(db, "F001", faq("F999"), "bob", expected_version=2)
    with pytest.raises(EntryNotFound):
        update_entry(db, "F404", faq("F404"), "bob", expected_version=1)
    same = update_entry(db, "F001", faq(answer="请携带起诉状和身份证明到立案窗口办理。"), "bob", expected_version=2)
    assert same.version == 2  # nothing changed, nothing recorded
    db.rollback()

    rows = history(db, "F001")
    assert [(r.version, r.action, r.who) for r in rows] == [(1, "create", "alice"), (2, "update", "bob")]
    assert rows[0].before is None and rows[0].after["answer"].startswith("您可以")
    assert rows[1].before["answer"].startswith("您可以") and rows[1].after["answer"].startswith("请携带")
    assert rows[1].after == {"id": "F001", "category": "consult", "question": "怎么立案？",
                             "variants": ["如何立案", "网上立案怎么弄"],
                             "answer": "请携带起诉状和身份证明到立案窗口办理。", "keywords": ["立案"],
                             "title": "怎么立案", "enabled": True, "version": 2}
    assert t0 - timedelta(seconds=1) <= rows[1].at <= utcnow() and rows[1].at.tzinfo is not None


def test_enable_disable_delete_recreate_and_diff(db):
    create_entry(db, faq(), "adm")
    assert set_enabled(db, "F001", False, "adm").version == 2
    assert set_enabled(db, "F001", False, "adm").version == 2  # already disabled: no-op
    with pytest.raises(VersionConflict):
        set_enabled(db, "F001", True, "adm", expected_version=1)
    assert set_enabled(db, "F001", True, "sup", expected_version=2).version == 3
    update_entry(db, "F001", faq(keywords=["立案", "起诉"], question="怎么起诉立案？"), "adm", expected_version=3)
    with pytest.raises(VersionConflict):
        delete_entry(db, "F001", "adm", expected_version=3)
    delete_entry(db, "F001", "adm", expected_version=4)
    db.commit()
    assert get_entry(db, "F001") is None
    with pytest.raises(EntryNotFound):
        delete_entry(db, "F001", "adm")

    assert [(r.version, r.action) for r in history(db, "F001")] == [
        (1, "create"), (2, "disable"), (3, "enable"), (4, "update"), (5, "delete")]
    assert history(db, "F001")[-1].after is None

    assert diff(db, "F001", 1, 2) == {"enabled": {"before": True, "after": False}}
    # the title was left out, so it follows the question (made from it)
    assert diff(db, "F001", 1, 4) == {"question": {"before": "怎么立案？", "after": "怎么起诉立案？"},
                                      "keywords": {"before": ["立案"], "after": ["立案", "起诉"]},
                                      "title": {"before": "怎么立案", "after": "怎么起诉立案"}}
    assert set(diff(db, "F001", 4, 5)) == {"id", "category", "question", "variants", "answer", "keywords",
                                            "title", "enabled"}
    with pytest.raises(VersionNotFound):
        diff(db, "F001", 1, 9)

    again = create_entry(db, faq(), "adm")  # the same id again: versions keep counting
    db.commit()
    assert again.version == 6
    assert [r.version for r in history(db, "F001")] == [1, 2, 3, 4, 5, 6]


def test_stamp_changes_with_every_committed_change_only(engine, db):
    other = session_factory(engine)  # as a worker would: its own connection
    with other() as w:
        start = kb_stamp(w)
    create_entry(db, faq(), "adm")
    with other() as w:
        assert kb_stamp(w) == start  # not committed yet
    db.commit()
    stamps = []
    for change in (lambda: update_entry(db, "F001", faq(answer="新的答案内容，请拨打12368。"), "adm",
                                        expected_version=1),
                   lambda: set_enabled(db, "F001", False, "adm"),
                   lambda: delete_entry(db, "F001", "adm")):
        with other() as w:
            stamps.append(kb_stamp(w))
        change()
        db.commit()
    with other() as w:
        stamps.append(kb_stamp(w))
    assert stamps == [start + 1, start + 2, start + 3, start + 4]
    with pytest.raises(EntryNotFound):  # a refused change does not move the stamp
        set_enabled(db, "F001", True, "adm")
    db.rollback()
    assert kb_stamp(db) == start + 4


def test_apply_import_upserts_or_replaces_with_import_history(db):
    create_entry(db, faq("F001"), "adm")
    create_entry(db, faq("F002", question="诉讼费怎么交？"), "adm")
    create_entry(db, faq("F003", question="诉讼费怎么退？"), "adm", enabled=False)
    db.commit()
    stamp = kb_stamp(db)
    r = apply_import(db, [faq("F001"), faq("F003", question="诉讼费退费怎么办理？"), faq("F004")], "imp")
    db.commit()
    assert r.summary() == {"total": 3, "created": 1, "updated": 1, "unchanged": 1, "deleted": 0}
    assert kb_stamp(db) == stamp + 1
    assert get_entry(db, "F003").enabled is False and get_entry(db, "F003").version == 2  # keeps the flag
    assert [x.id for x in list_entries(db)] == ["F001", "F002", "F003", "F004"]

    r = apply_import(db, [faq("F004"), faq("F005")], "imp", replace=True)
    db.commit()
    assert r.summary() == {"total": 2, "created": 1, "updated": 0, "unchanged": 1, "deleted": 3}
    assert [x.id for x in list_entries(db)] == ["F004", "F005"]
    assert [(h.action, h.who, h.after) for h in history(db, "F002")][-1] == ("import", "imp", None)
    assert kb_stamp(db) == stamp + 2
    apply_import(db, [faq("F004"), faq("F005")], "imp")
    assert kb_stamp(db) == stamp + 2  # nothing changed, nothing recorded
    with pytest.raises(KbError):
        apply_import(db, [faq("F1"), faq("F1")], "imp")


def _write_kb(path, entries):
    path.write_text(json.dumps([e.model_dump() for e in entries], ensure_ascii=False), encoding="utf-8")


def test_default_kb_loads_on_first_start_only(tmp_path, engine, db, new_db):
    missing = tmp_path / "nope.json"
    assert load_default_if_empty(db, missing) == 0  # not written yet: skipped silently
    default = tmp_path / "default_kb.json"
    _write_kb(default, [faq("F001"), faq("F002", category="query")])
    assert load_default_if_empty(db, default) == 2
    db.commit()
    assert [(h.action, h.who) for h in db.scalars(select(KbHistory))] == [("import", "system")] * 2
    assert load_default_if_empty(db, default) == 0  # not empty any more
    for e in list_entries(db):
        delete_entry(db, e.id, "adm")
    db.commit()
    assert load_default_if_empty(db, default) == 0  # emptied by an admin: the defaults stay away

    fresh = make_engine(new_db(migrated=True))
    try:
        broken = tmp_path / "broken.json"
        broken.write_text('[{"id": "F001", "category": "nope"}]', encoding="utf-8")
        with session_factory(fresh)() as s, pytest.raises(KbImportError, match="第1条 category"):
            load_default_if_empty(s, broken)
        assert load_default_kb(fresh, broken) == 0  # the hub logs it and starts anyway
        assert load_default_kb(fresh, default) == 2
        assert load_default_kb(fresh, default) == 0
    finally:
        fresh.dispose()
