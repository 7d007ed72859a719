"""Import/export of the KB: lossless round trips in JSON, CSV and XLSX; every malformed kind imports nothing
(the SQLite file is byte-for-byte unchanged) and names row and field; the ``hotline kb`` commands."""

from __future__ import annotations

import hashlib
import io
import json

import pytest
from openpyxl import Workbook, load_workbook
from sqlalchemy import text
from typer.testing import CliRunner

from hotline.cli import app
from hotline.cli_db import open_session
from hotline.db import make_engine, session_factory
from hotline.settings import load_settings
from knowledge_base.entry import FaqEntry
from knowledge_base.io import (
    FORMATS,
    KbImportError,
    export_bytes,
    import_bytes,
    join_list,
    read_entries,
    split_list,
    write_entries,
)
from knowledge_base.store import create_entry, get_entry, history, kb_stamp, list_entries, set_enabled

HEADER = "id,category,question,variants,answer,keywords"

TRICKY = [
    FaqEntry(id="F001", category="consult", question="怎么网上立案？",
             variants=["如何在网上立案", "网上|立案", "反斜杠\\在这", "含,逗号与\"引号\""],
             answer="您可以登录人民法院在线服务平台，选择“网上立案”。\n第二行：携带身份证。",
             keywords=["立案", "网上立案"]),
    FaqEntry(id="F002", category="query", question="=1+1 案件进度怎么查？", variants=[],
             answer="拨打12368，按2查询案件进度。", keywords=[]),
    FaqEntry(id="F003.b", category="contact_judge", question="怎样联系承办法官？",
             variants=["找法官", "法官电话多少"], answer="请提供案号，我们将在一个工作日内转告承办法官。",
             keywords=["法官", "联系"]),
    FaqEntry(id="F004_x", category="complaint", question="我要投诉法院工作人员态度", variants=["投訴"],
             answer="请说明时间、地点和经过，我们会转交督查部门。", keywords=["投诉|信访"]),
]


def _xlsx(rows) -> bytes:
    wb = Workbook()
    ws = wb.active
    for r in rows:
        ws.append(r)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _settings(path, home_dir):
    path.write_text(f'home = "{home_dir}"\n')
    return path


def _seed(cfg):
    with open_session(cfg) as db:
        for e in TRICKY:
            create_entry(db, e, "seed")
        set_enabled(db, "F003.b", False, "seed")
        db.commit()
    return cfg


@pytest.fixture
def home(tmp_path):
    """A settings file whose database the CLI and the tests share; seeded with TRICKY (F003.b disabled)."""
    return _seed(_settings(tmp_path / "hotline.toml", tmp_path / "home"))


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """One seeded database for the rejected imports (each test checks that it stays unchanged)."""
    d = tmp_path_factory.mktemp("shared")
    cfg = _seed(_settings(d / "hotline.toml", d / "home"))
    settings = load_settings(cfg)
    engine = make_engine(settings.db_url)
    yield engine
    engine.dispose()


def engine_state(engine) -> tuple[list, str]:
    """A dump of the KB tables and the hash of the SQLite file after a checkpoint."""
    with engine.connect() as conn:
        dump = [list(map(tuple, conn.execute(text(f"SELECT * FROM {t} ORDER BY 1")).all()))
                for t in ("kb_entries", "kb_history", "kb_revision")]
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    return dump, hashlib.sha256(open(engine.url.database, "rb").read()).hexdigest()


def state(cfg) -> tuple[list, str]:
    engine = make_engine(load_settings(cfg).db_url)
    try:
        return engine_state(engine)
    finally:
        engine.dispose()


@pytest.mark.parametrize("fmt", FORMATS)
def test_round_trip_is_lossless(home, tmp_path, fmt):
    with open_session(home) as db:
        exported = export_bytes(db, fmt)
    assert read_entries(exported, fmt) == TRICKY
    other = tmp_path / "other.toml"
    other.write_text(f'home = "{tmp_path / "other"}"\n')
    with open_session(other) as db:
        result = import_bytes(db, exported, fmt, "imp")
        db.commit()
        assert result.summary()["created"] == 4
        again = export_bytes(db, fmt)
        assert [(e.id, e.question, e.variants, e.answer, e.keywords) for e in list_entries(db)] == [
            (e.id, e.question, e.variants, e.answer, e.keywords) for e in TRICKY]
    if fmt != "xlsx":  # xlsx files carry a timestamp; their content is compared above
        assert again == exported
    with open_session(home) as db:  # importing one's own export changes nothing
        before = kb_stamp(db)
        assert import_bytes(db, exported, fmt, "imp").summary()["unchanged"] == 4
        db.commit()
        assert kb_stamp(db) == before


def test_list_cells_and_encodings():
    assert split_list("") == [] and split_list("  ") == []
    assert split_list("a|b") == ["a", "b"] and split_list(r"a\|b|c\\") == ["a|b", "c\\"]
    assert split_list(r"C:\path") == ["C:\\path"]
    for items in (["a|b", "c\\", "\\|"], ["诉讼费", "退费|退款"]):
        assert split_list(join_list(items)) == items
    csv_text = "\ufeff" + HEADER + "\r\nF9,urge,法官一直不回复怎么办,,请您稍候，我们会催办。,催办\r\n"
    assert read_entries(csv_text.encode("utf-8"), "csv")[0].keywords == ["催办"]  # BOM, CRLF, empty list
    minimal = b'[{"id": "F9", "category": "urge", "question": "\xe5\x82\xac\xe5\x8a\x9e\xe4\xb8\x80\xe4\xb8\x8b",' \
              b' "answer": "\xe5\xa5\xbd\xe7\x9a\x84\xe5\xa5\xbd\xe7\x9a\x84"}]'
    e = read_entries(minimal, "json")[0]  # variants and keywords may be left out
    assert e.variants == [] and e.keywords == []
    no_lists = "id,category,question,answer\nF9,urge,催办一下,好的好的\n"
    assert read_entries(no_lists.encode(), "csv")[0].variants == []
    assert read_entries(_xlsx([["question", "id", "answer", "category"], ["催办一下", "F9", "好的好的", "urge"],
                               [None, None, None, None]]), "xlsx")[0].id == "F9"  # any column order


GBK_CSV = (HEADER + "\nF100,consult,怎么立案,,到立案窗口办理,\n").encode("gbk")

MALFORMED = [
    # (name, format, bytes, expected fragments of the message)
    ("bad category json", "json",
     json.dumps([TRICKY[0].model_dump(), {**TRICKY[1].model_dump(), "category": "faq"}], ensure_ascii=False),
     ["第2条 category 字段无效", "“faq”"]),
    ("bad category xlsx", "xlsx",
     _xlsx([HEADER.split(","), ["F100", "consult", "怎么立案", "", "到立案窗口办理", ""],
            ["F101", "咨询", "怎么交费", "", "网上交费", ""]]),
     ["第3行 category 字段无效", "“咨询”"]),
    ("duplicate id csv", "csv",
     HEADER + "\nF100,consult,怎么立案,,到立案窗口办理,\nF200,consult,怎么交费,,网上交费,\n"
              "F100,query,怎么查询,,拨打12368,\n",
     ["第4行 id 字段重复", "第2行"]),
    ("duplicate id json", "json",
     json.dumps([TRICKY[0].model_dump(), TRICKY[0].model_dump()], ensure_ascii=False), ["第2条 id 字段重复"]),
    ("empty question csv", "csv", HEADER + "\nF100,consult,,,到立案窗口办理,\n", ["第2行 question 字段不能为空"]),
    ("empty question xlsx", "xlsx",
     _xlsx([HEADER.split(","), ["F100", "consult", "   ", None, "到立案窗口办理", None]]),
     ["第2行 question 字段不能为空"]),
    ("missing answer json", "json", '[{"id": "F1", "category": "urge", "question": "催办一下"}]',
     ["第1条 answer 字段缺失"]),
    ("unreadable xlsx", "xlsx", b"PK\x03\x04 this is not a workbook", ["无法读取 XLSX 文件"]),
    ("unreadable json", "json", '[{"id": "F1",,}]', ["JSON 格式错误：第1行"]),
    ("not a list json", "json", '{"id": "F1"}', ["应为一个列表"]),
    ("gbk csv", "csv", GBK_CSV, ["文件编码错误", "第2行", "UTF-8", "GBK"]),
    ("broken utf-8 json", "json", b'[{"id": "F1", "question": "\xff\xfe"}]', ["文件编码错误", "UTF-8"]),
    ("extra column csv", "csv", HEADER + ",enabled\nF100,consult,怎么立案,,到立案窗口办理,,true\n",
     ["第1行 enabled 字段不允许"]),
    ("extra key json", "json", json.dumps([{**TRICKY[0].model_dump(), "enabled": True}]),
     ["第1条 enabled 字段不允许"]),
    ("missing column csv", "csv", "id,category,answer\nF100,consult,到立案窗口办理\n", ["第1行 question 字段缺失"]),
    ("list as text json", "json", json.dumps([{**TRICKY[0].model_dump(), "variants": "如何立案"}]),
     ["第1条 variants 字段类型错误", "列表"]),
    ("number as id json", "json", json.dumps([{**TRICKY[0].model_dump(), "id": 1001}]),
     ["第1条 id 字段类型错误", "文本"]),
    ("number cell xlsx", "xlsx",
     _xlsx([HEADER.split(","), ["F100", "consult", "怎么立案", "", "到立案窗口办理", ""],
            [1001, "consult", "怎么交费", "", "网上交费", ""]]),
     ["第3行 id 字段类型错误"]),
    ("blank list item csv", "csv", HEADER + "\nF100,consult,怎么立案,a||b,到立案窗口办理,\n",
     ["第2行 variants 字段无效", "空项"]),
    ("bad id csv", "csv", HEADER + "\n编号一,consult,怎么立案,,到立案窗口办理,\n", ["第2行 id 字段无效"]),
    ("too many cells csv", "csv", HEADER + "\nF100,consult,怎么立案,,到立案窗口办理,,多出来\n", ["第2行 列数多于表头"]),
    ("empty csv", "csv", "", ["文件是空的"]),
]


@pytest.mark.parametrize("name,fmt,data,fragments", MALFORMED, ids=[m[0] for m in MALFORMED])
@pytest.mark.parametrize("replace", [False, True], ids=["upsert", "replace"])
def test_malformed_import_changes_nothing(shared, name, fmt, data, fragments, replace):
    data = data.encode("utf-8") if isinstance(data, str) else data
    before = engine_state(shared)
    assert len(before[0][0]) == 4
    with session_factory(shared)() as db, pytest.raises(KbImportError) as err:
        import_bytes(db, data, fmt, "imp", replace=replace)
    message = str(err.value)
    for frag in fragments:
        assert frag in message, (frag, message)
    assert engine_state(shared) == before


def test_all_errors_are_listed_with_rows_and_fields():
    data = (HEADER + "\nF1,nope,,,答案答案,\nF2,consult,问题问题,,答,\nF1,urge,问题问题,,答案答案,\n").encode()
    with pytest.raises(KbImportError) as err:
        read_entries(data, "csv")
    found = [(e.row, e.field) for e in err.value.errors]
    assert found == [(2, "category"), (2, "question"), (3, "answer"), (4, "id")]


def test_failure_while_writing_rolls_back(home):
    """Validation passed but the transaction dies half-way: the replace leaves nothing behind."""
    before = state(home)
    big = [FaqEntry(id=f"N{i:04d}", category="consult", question=f"问题{i}", answer="答案内容") for i in range(50)]

    def die(done, total):
        if done == 30:
            raise RuntimeError("disk full")

    with open_session(home) as db, pytest.raises(RuntimeError):
        import_bytes(db, write_entries(big, "csv"), "csv", "imp", replace=True, apply_progress=die)
    assert state(home) == before


def test_cli_import_export_list(home, tmp_path, monkeypatch):
    runner = CliRunner()
    out = tmp_path / "kb.xlsx"
    r = runner.invoke(app, ["kb", "export", str(out), "-c", str(home)])
    assert r.exit_code == 0 and "exported 4 entries" in r.output, r.output
    assert load_workbook(out).active["C2"].value == "怎么网上立案？"

    r = runner.invoke(app, ["kb", "list", "--json", "--category", "contact_judge", "-c", str(home)])
    rows = [json.loads(line) for line in r.output.splitlines()]
    assert r.exit_code == 0 and [(x["id"], x["enabled"], x["version"]) for x in rows] == [("F003.b", False, 2)]
    r = runner.invoke(app, ["kb", "list", "-c", str(home)])
    assert r.exit_code == 0 and "F001" in r.output and "[disabled]" in r.output and "4 entries" in r.output

    bad = tmp_path / "bad.csv"
    bad.write_bytes(GBK_CSV)
    before = state(home)
    r = runner.invoke(app, ["kb", "import", str(bad), "--replace", "-c", str(home)])
    assert r.exit_code == 2 and "未做任何更改" in r.output and "第2行" in r.output, r.output
    bad.write_text(HEADER + "\nF100,consult,怎么立案,,到立案窗口办理,\nF101,bogus,问题问题,,答案答案,\n")
    r = runner.invoke(app, ["kb", "import", str(bad), "-c", str(home)])
    assert r.exit_code == 2 and "第3行 category 字段无效" in r.output, r.output
    r = runner.invoke(app, ["kb", "import", str(tmp_path / "kb.txt"), "-c", str(home)])
    assert r.exit_code == 2 and "无法识别的文件类型" in r.output
    assert state(home) == before

    monkeypatch.setattr("hotline.cli_kb.LARGE", 1)  # the progress bar path
    new = tmp_path / "new.json"
    new.write_bytes(write_entries(TRICKY[:2] + [FaqEntry(id="F777", category="suggestion", question="建议延长服务时间",
                                                         answer="感谢您的建议，我们会认真研究。")], "json"))
    r = runner.invoke(app, ["kb", "import", str(new), "--replace", "-c", str(home)])
    assert r.exit_code == 0, r.output
    assert "3 entries — 1 created, 0 updated, 2 unchanged, 2 deleted" in r.output
    with open_session(home) as db:
        assert [e.id for e in list_entries(db)] == ["F001", "F002", "F777"]
        assert get_entry(db, "F777").updated_by.startswith("cli")
        assert history(db, "F003.b")[-1].action == "import" and history(db, "F003.b")[-1].after is None
    r = runner.invoke(app, ["kb", "import", str(out), "-c", str(home)])  # the xlsx export brings them back
    assert r.exit_code == 0 and "2 created" in r.output, r.output


def test_csv_export_never_hands_a_spreadsheet_a_formula_and_round_trips():
    from knowledge_base.entry import FaqEntry
    from knowledge_base.io import read_entries, write_csv

    e = FaqEntry(id="X1", category="consult", question="=HYPERLINK(\"http://x\")是什么", variants=["+1", "@SUM(A1)"],
                 answer="-请携带身份证。", keywords=[])
    data = write_csv([e])
    body = data.decode("utf-8-sig").splitlines()[1]
    assert "'=HYPERLINK" in body and "'-请携带" in body
    assert not any(cell.startswith(("=", "+", "-", "@")) for cell in body.split(","))
    back = read_entries(data, "csv")[0]
    assert back.question == e.question and back.answer == e.answer and back.variants == e.variants
