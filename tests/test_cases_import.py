"""The demo case store: case-number normalisation, imports that are all or nothing (the SQLite file is
unchanged and every bad row is named), secrets kept only as salted hashes, the status sentence, the
``hotline cases`` commands and the demo cases loaded on first start. The store's tests run on SQLite and
PostgreSQL (``database_url`` in the settings file)."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import select, text
from typer.testing import CliRunner

from court_cases.case import CaseInfo, Hearing, Party, Stage
from court_cases.demo import DemoCaseStore, apply_import, find_record, load_demo_if_empty, never_filled
from court_cases.io import DEMO_CASES_PATH, FIELDS, CaseImportError, read_cases
from court_cases.models import CaseParty, CaseRecord
from court_cases.numbers import normalise
from court_cases.spoken import number, readback, speak_numbers, spoken_case_number, spoken_time, status_sentence
from hotline.cli import app
from hotline.db import make_engine, session_factory
from hotline.hub_main import load_demo_cases
from hotline.settings import load_settings

runner = CliRunner()
HEADER = ",".join(FIELDS)
GOOD = [
    {"case_number": "（2026）粤0305民初1234号", "lookup_number": "26011234", "cause": "民间借贷纠纷",
     "parties": ["原告:张伟:11001X", "被告:李强:220018"], "stage": "审理中", "hearing_at": "2027-03-05 09:30",
     "hearing_place": "第3法庭", "judge": "王明", "clerk": "陈静", "department": "民一庭",
     "judge_team_line": "sip:8101@pbx.court.example", "query_password": "123456"},
    {"case_number": "2025*440305*4*1888", "lookup_number": "25021888", "cause": "民间借贷纠纷",
     "parties": [{"role": "申请执行人", "name": "黄丽", "id_last6": "44032x"}, {"role": "被执行人", "name": "周杰"}],
     "stage": "enforcement", "judge": "孙涛", "department": "执行局",
     "enforcement_status": "已冻结被执行人银行存款8万元", "refund_status": "执行款5万元已于2027年2月10日发放",
     "updated_at": "2027-02-10T11:45:00+08:00"},
]


def _cfg(tmp_path, name="hotline.toml", extra="", db_url=None):
    path = tmp_path / name
    url = f'database_url = "{db_url}"\n' if db_url else ""
    path.write_text(f'home = "{tmp_path / "home"}"\n{url}{extra}', encoding="utf-8")
    return path


def _engine(cfg):
    return make_engine(load_settings(cfg).db_url)


def db_state(engine) -> tuple[list, str]:
    """The case tables' rows and (SQLite) the hash of the file after a checkpoint."""
    with engine.connect() as conn:
        dump = [list(map(tuple, conn.execute(text(f"SELECT * FROM {t} ORDER BY 1")).all()))
                for t in ("cases", "case_parties", "case_imports")]
        if engine.dialect.name != "sqlite":
            return dump, ""
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    return dump, hashlib.sha256(open(engine.url.database, "rb").read()).hexdigest()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def seeded(request, tmp_path_factory):
    """A settings file whose database holds GOOD (imported through the CLI), on SQLite and on PostgreSQL."""
    d = tmp_path_factory.mktemp("cases")
    cfg = _cfg(d, db_url=request.getfixturevalue("pg_cluster").create_database()
               if request.param == "postgresql" else None)
    src = d / "good.json"
    src.write_text(json.dumps(GOOD, ensure_ascii=False), encoding="utf-8")
    r = runner.invoke(app, ["cases", "import", str(src), "-c", str(cfg)])
    assert r.exit_code == 0, r.output
    engine = _engine(cfg)
    yield cfg, engine
    engine.dispose()


# ---------------------------------------------------------------- numbers and sentences


@pytest.mark.parametrize("said,kind,value", [
    ("（2023）粤0305民初1234号", "case", "（2023）粤0305民初1234号"),
    ("2023*440305*1*1234#", "case", "（2023）粤0305民初1234号"),
    ("2023*440305*1*1234", "case", "（2023）粤0305民初1234号"),
    ("(2023)粤0305民初第1234号", "case", "（2023）粤0305民初1234号"),
    ("二零二三年粤零三零五民初一二三四号", "case", "（2023）粤0305民初1234号"),
    ("二〇二三年粤〇三〇五民初一千二百三十四号", "case", "（2023）粤0305民初1234号"),
    ("2025*440305*4*1888#", "case", "（2025）粤0305执1888号"),
    ("（2024）粤03民终77号", "case", "（2024）粤03民终77号"),
    ("26011234", "lookup", "26011234"),
    ("2601 1234#", "lookup", "26011234"),
    ("二六零一一二三四", "lookup", "26011234"),
])
def test_keypad_text_and_lookup_numbers_are_normalised(said, kind, value):
    ref = normalise(said)
    assert ref is not None and (ref.kind, ref.value) == (kind, value)


@pytest.mark.parametrize("said", ["", "12345", "2023*990305*1*1234", "2023*440305*99*1", "2023*440305*1*1234*",
                                  "我的案子", "1" * 13, "2023**1*5"])
def test_what_is_not_a_number(said):
    assert normalise(said) is None


def test_numbers_are_written_for_the_voice():
    assert [number(n) for n in (0, 2, 10, 15, 105, 1010, 10500, 12000, 120000)] == [
        "零", "二", "十", "十五", "一百零五", "一千零一十", "一万零五百", "一万二千", "十二万"]
    at = datetime(2027, 3, 5, 1, 30, tzinfo=UTC)  # 09:30 in Beijing
    assert spoken_time(at, "Asia/Shanghai") == "二零二七年三月五日，星期五，上午九点三十分"
    assert spoken_time(datetime(2027, 3, 12, 6, 5, tzinfo=UTC)) == "二零二七年三月十二日，星期五，下午两点零五分"
    assert spoken_case_number("（2023）粤0305民初1234号") == "二零二三年粤零三零五民初一二三四号"
    assert readback(None, "26011234") == "您输入的查询号是：二六零一一二三四。"
    assert speak_numbers("执行款12000元已于2027年2月10日发放，15个工作日内到第3法庭") == \
        "执行款一万二千元已于二零二七年二月十日发放，十五个工作日内到第三法庭"


def test_status_sentence_names_stage_hearing_judge_and_money():
    case = CaseInfo(case_number="（2026）粤0305民初1234号", cause="民间借贷纠纷", stage=Stage.in_trial,
                    parties=[Party(name="张伟", role="原告")],
                    next_hearing=Hearing(at=datetime(2027, 3, 5, 9, 30), place="第三法庭"),
                    judge="王明", clerk="陈静", department="民一庭")
    s = status_sentence(case, now=datetime(2027, 3, 1, tzinfo=UTC))
    assert s == ("您查询的案件，案由是民间借贷纠纷，目前正在审理中。下次开庭时间是二零二七年三月五日，星期五，"
                 "上午九点三十分，地点在第三法庭。承办法官是王明，书记员是陈静，承办部门是民一庭。")
    assert not any(ch.isdigit() for ch in s) and "张伟" not in s  # nothing the voice reads digit by digit; no names
    # a hearing already held is not announced as the next one
    assert "开庭时间" not in status_sentence(case, now=datetime(2027, 3, 6, tzinfo=UTC))
    enforced = case.model_copy(update={"stage": Stage.enforcement, "next_hearing": None,
                                       "enforcement_status": "已冻结存款8万元",
                                       "refund_status": "执行款5万元已于2027年2月10日转入申请执行人账户"})
    s = status_sentence(enforced, now=datetime(2027, 3, 1, tzinfo=UTC))
    assert "目前正在执行中" in s and "执行情况：已冻结存款八万元。" in s
    assert "退费情况：执行款五万元已于二零二七年二月十日转入申请执行人账户。" in s


# ---------------------------------------------------------------- the store


def test_import_stores_hashes_never_secrets(seeded):
    _cfg_path, engine = seeded
    with session_factory(engine)() as db:
        rec = find_record(db, "2026*440305*1*1234#")
        assert rec is not None and rec.number == "（2026）粤0305民初1234号" and rec.stage == "in_trial"
        assert [(p.role, p.name) for p in rec.parties] == [("原告", "张伟"), ("被告", "李强")]
        assert rec.hearing_place == "第3法庭" and rec.hearing_at == datetime(2027, 3, 5, 1, 30, tzinfo=UTC)
        assert find_record(db, "26011234").number == rec.number  # the lookup number finds it too
        assert find_record(db, "25021888").parties[0].id_hash.startswith("scrypt$")
    dump = repr(db_state(engine)[0])
    for secret in ("123456", "11001X", "220018", "44032X"):
        assert secret not in dump
    if engine.dialect.name == "sqlite":
        with open(engine.url.database, "rb") as f:
            raw = f.read()
        assert b"123456" not in raw and b"11001X" not in raw
    store = DemoCaseStore(session_factory(engine))
    assert store.verify("（2026）粤0305民初1234号", "123456")
    assert store.verify("26011234", "11001*")  # keypad * stands for X
    assert store.verify("2026*440305*1*1234", "220018")
    assert not store.verify("（2026）粤0305民初1234号", "44032X")  # another case's party
    assert not store.verify("（2026）粤0305民初1234号", "654321")
    assert store.verify("（2025）粤0305执1888号", "44032X")
    assert not store.verify("（2025）粤0305执1888号", "123456")  # this case has no 查询密码
    assert not store.verify("（2099）粤0305民初1号", "123456")
    info = store.get_case("二六零一一二三四")
    assert info is not None and info.stage is Stage.in_trial and info.judge_team_line == "sip:8101@pbx.court.example"
    assert store.get_case("（2099）粤0305民初1号") is None and store.get_case("垃圾") is None


GBK_CSV = (HEADER + "\n（2026）粤0305民初1号,,离婚纠纷,原告:杨芳,审理中,,,,,,,,,,\n").encode("gbk")
ROW = "（2026）粤0305民初1号,,离婚纠纷,原告:杨芳|被告:马俊,审理中,,,赵敏,,家事审判庭,,,,,"
MALFORMED = [
    ("bad case number csv", "csv", HEADER + "\n" + ROW + "\n粤0305民初2号,,离婚纠纷,原告:杨芳,审理中,,,,,,,,,,\n",
     ["第3行 case_number 字段无效", "不是有效的案号"]),
    ("lookup as case number json", "json", [{**GOOD[0], "case_number": "26011234"}],
     ["第1条 case_number 字段无效", "是查询号"]),
    ("unknown stage json", "json", [GOOD[0], {**GOOD[1], "stage": "审核中"}],
     ["第2条 stage 字段无效", "“审核中”", "in_trial（审理中）"]),
    ("duplicate csv", "csv",
     HEADER + "\n" + ROW + "\n" + ROW.replace("（2026）粤0305民初1号", "2026*440305*1*1") + "\n",
     ["第3行 case_number 字段重复", "第2行"]),
    ("duplicate lookup json", "json", [GOOD[0], {**GOOD[1], "lookup_number": "26011234"}],
     ["第2条 lookup_number 字段重复"]),
    ("missing field json", "json", [{k: v for k, v in GOOD[0].items() if k != "cause"}], ["第1条 cause 字段缺失"]),
    ("missing column csv", "csv", "case_number,cause,stage\n（2026）粤0305民初1号,离婚纠纷,审理中\n",
     ["第1行 parties 字段缺失"]),
    ("bad date csv", "csv", HEADER + "\n" + ROW.replace("审理中,,", "审理中,2027-02-30 09:00,") + "\n",
     ["第2行 hearing_at 字段无效", "2027-02-30"]),
    ("hearing without time json", "json", [{**GOOD[0], "hearing_at": "2027-03-05"}], ["第1条 hearing_at 字段无效"]),
    ("bad party json", "json", [{**GOOD[0], "parties": ["原吿:张伟", "被告"]}],
     ["第1条 parties 字段第1项无效", "“原吿”", "第1条 parties 字段第2项格式不对"]),
    ("bad id digits json", "json", [{**GOOD[0], "parties": ["原告:张伟:1234567"]}], ["第1项身份证后6位无效"]),
    ("bad password json", "json", [{**GOOD[0], "query_password": "abc"}], ["第1条 query_password 字段无效"]),
    ("extra key json", "json", [{**GOOD[0], "id_number": "440305199001011234"}], ["第1条 id_number 字段不允许"]),
    ("not a list json", "json", {"case_number": "x"}, ["应为一个列表"]),
    ("broken json", "json", '[{"case_number": ,}]', ["JSON 格式错误：第1行"]),
    ("gbk csv", "csv", GBK_CSV, ["文件编码错误", "第2行", "GBK"]),
    ("too many cells csv", "csv", HEADER + "\n" + ROW + ",多出来\n", ["第2行 列数多于表头"]),
    ("empty csv", "csv", "", ["文件是空的"]),
]


def _bytes(data) -> bytes:
    if isinstance(data, bytes):
        return data
    return (data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)).encode("utf-8")


@pytest.mark.parametrize("name,fmt,data,fragments", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_import_changes_nothing(seeded, tmp_path, name, fmt, data, fragments):
    cfg, engine = seeded
    before = db_state(engine)
    assert len(before[0][0]) == 2
    f = tmp_path / f"cases.{fmt}"
    f.write_bytes(_bytes(data))
    for args in ([], ["--replace"]):
        r = runner.invoke(app, ["cases", "import", str(f), "-c", str(cfg), *args])
        assert r.exit_code == 2, r.output
        assert "导入被拒绝，案件库未做任何更改" in r.output
        for frag in fragments:
            assert frag in r.output, (frag, r.output)
        assert db_state(engine) == before


def test_lookup_number_held_by_a_stored_case(seeded, tmp_path):
    cfg, engine = seeded
    before = db_state(engine)
    f = tmp_path / "clash.json"
    f.write_text(json.dumps([{**GOOD[0], "case_number": "（2026）粤0305民初99号"}], ensure_ascii=False))
    r = runner.invoke(app, ["cases", "import", str(f), "-c", str(cfg)])
    assert r.exit_code == 2 and "第1条 lookup_number 字段重复：查询号“26011234”已被案件“（2026）粤0305民初1234号”使用" \
        in r.output, r.output
    assert db_state(engine) == before


def test_unreadable_file_and_wrong_type(seeded, tmp_path):
    cfg, engine = seeded
    before = db_state(engine)
    for path, frag in ((tmp_path / "missing.json", "无法读取文件"), (tmp_path / "cases.xlsx", "无法识别的文件类型")):
        if path.suffix == ".xlsx":
            path.write_bytes(b"PK")
        r = runner.invoke(app, ["cases", "import", str(path), "-c", str(cfg)])
        assert r.exit_code == 2 and frag in r.output, r.output
    assert db_state(engine) == before


def test_every_error_is_listed_with_row_and_field():
    data = (HEADER + "\n（2026）粤0305民初1号,,,原告:杨芳,乱填,,,,,,,,,,\n"
                     "（2026）粤0305民初2号,12,离婚纠纷,原告:杨芳,结案,,第三法庭,,,,,,,,\n").encode()
    with pytest.raises(CaseImportError) as err:
        read_cases(data, "csv")
    found = [(e.row, e.field) for e in err.value.errors]
    assert found == [(2, "cause"), (2, "stage"), (3, "lookup_number"), (3, "hearing_place")]


def test_failure_while_writing_rolls_back(seeded, monkeypatch):
    monkeypatch.setattr("court_cases.hashing.LOG2_N", 10)  # cheap hashes: this test is about the transaction
    _cfg_path, engine = seeded
    before = db_state(engine)
    rows = read_cases(json.dumps([{**GOOD[0], "case_number": f"（2027）粤0305民初{i}号", "lookup_number": None}
                                  for i in range(1, 40)], ensure_ascii=False).encode(), "json")

    def die(done, total):
        if done == 30:
            raise RuntimeError("disk full")

    with session_factory(engine)() as db, pytest.raises(RuntimeError):
        apply_import(db, rows, "t", replace=True, progress=die, workers=1)
    assert db_state(engine) == before


def test_upsert_replace_and_unchanged(tmp_path, db_url):
    cfg = _cfg(tmp_path, db_url=db_url)
    src = tmp_path / "a.json"
    src.write_text(json.dumps(GOOD, ensure_ascii=False), encoding="utf-8")
    assert runner.invoke(app, ["cases", "import", str(src), "-c", str(cfg)]).exit_code == 0
    r = runner.invoke(app, ["cases", "import", str(src), "-c", str(cfg)])
    assert "0 created, 0 updated, 2 unchanged" in r.output, r.output
    changed = [{**GOOD[0], "query_password": "999999", "parties": ["原告:张伟"]}]
    src.write_text(json.dumps(changed, ensure_ascii=False), encoding="utf-8")
    r = runner.invoke(app, ["cases", "import", str(src), "-c", str(cfg), "--replace"])
    assert "1 updated" in r.output and "1 deleted" in r.output, r.output
    engine = _engine(cfg)
    try:
        store = DemoCaseStore(session_factory(engine))
        assert store.verify("26011234", "999999") and not store.verify("26011234", "123456")
        assert not store.verify("26011234", "220018")  # the party who left took his ID digits along
        assert store.get_case("25021888") is None
        with session_factory(engine)() as db:
            assert db.scalar(select(CaseParty.case_number).where(CaseParty.case_number.like("%执%"))) is None
    finally:
        engine.dispose()


def test_cli_list_show_and_help(seeded):
    cfg, _engine_ = seeded
    r = runner.invoke(app, ["cases", "list", "-c", str(cfg)])
    assert r.exit_code == 0 and "（2026）粤0305民初1234号" in r.output and "2027-03-05 09:30" in r.output
    assert "2 cases" in r.output
    r = runner.invoke(app, ["cases", "list", "-c", str(cfg), "--stage", "enforcement", "--json"])
    assert [json.loads(line)["case_number"] for line in r.output.splitlines()] == ["（2025）粤0305执1888号"]
    r = runner.invoke(app, ["cases", "show", "2026*440305*1*1234#", "-c", str(cfg)])
    assert r.exit_code == 0 and "承办法官：王明" in r.output and "上午九点三十分" in r.output, r.output
    r = runner.invoke(app, ["cases", "show", "25021888", "-c", str(cfg), "--json"])
    doc = json.loads(r.output)
    assert doc["stage"] == "enforcement" and "执行款五万元" in doc["status_sentence"]
    assert runner.invoke(app, ["cases", "show", "（2099）粤0305民初1号", "-c", str(cfg)]).exit_code == 1


def test_demo_cases_load_once_on_first_start_only_when_asked(tmp_path, db_url, new_db):
    cfg = _cfg(tmp_path, extra="[cases]\nload_demo = true\n", db_url=db_url)
    settings = load_settings(cfg)
    engine = make_engine(settings.db_url)
    try:
        from hotline.db import upgrade_engine

        upgrade_engine(engine)
        assert load_demo_cases(settings, engine) == 10
        assert load_demo_cases(settings, engine) == 0  # not twice
        with session_factory(engine)() as db:
            stages = {r.stage for r in db.scalars(select(CaseRecord))}
            assert {"filed", "in_trial", "heard", "judged", "enforcement", "closed"} <= stages
            enforced = [r for r in db.scalars(select(CaseRecord)) if r.stage == "enforcement" and r.refund_status]
            assert enforced
            db.execute(text("DELETE FROM case_parties"))
            db.execute(text("DELETE FROM cases"))
            db.commit()
            assert not never_filled(db) and load_demo_if_empty(db) == 0  # emptied by an admin: stays empty
    finally:
        engine.dispose()
    off = _cfg(tmp_path, "off.toml")  # by default: their 查询密码 are public
    settings = load_settings(off)
    settings.database_url = new_db()
    engine = make_engine(settings.db_url)
    try:
        from hotline.db import upgrade_engine

        upgrade_engine(engine)
        assert load_demo_cases(settings, engine) == 0
    finally:
        engine.dispose()


def test_demo_file_is_valid_and_has_several_stages():
    rows = read_cases(DEMO_CASES_PATH.read_bytes(), "json")
    assert len(rows) == 10 and len({r.info.stage for r in rows}) >= 6
    assert all(r.query_password for r in rows)


def test_a_batch_import_stores_every_case_with_its_secrets_hashed(tmp_path):
    """60 cases in one import (3 secrets each, scrypt on every core); the rate is bench/cases.py's job."""
    n = 60
    doc = [{**GOOD[0], "case_number": f"（2027）粤0305民初{i}号", "lookup_number": f"{27000000 + i}"} for i in range(n)]
    rows = read_cases(json.dumps(doc, ensure_ascii=False).encode(), "json")
    engine = make_engine(f"sqlite:///{tmp_path / 'rate.db'}")
    try:
        from hotline.db import upgrade_engine

        upgrade_engine(engine)
        with session_factory(engine)() as db:
            apply_import(db, rows, "bench")
            db.commit()
        with session_factory(engine)() as db:
            stored = list(db.scalars(select(CaseRecord)))
    finally:
        engine.dispose()
    assert len(stored) == n
    assert {r.number for r in stored} == {normalise(d["case_number"]).value for d in doc}
    assert all(r.password_hash and "123456" not in r.password_hash for r in stored)
