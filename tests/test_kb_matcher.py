"""The FAQ matcher with the real embedding model: held-out figures (another court's FAQ and questions it was never
tuned on, spoken menu navigation), clarify/confirm, menu options ranked with entries, and the lexical-only mode
(kb.semantic = false: tuning-set figures, homophones, handoffs, confirm band)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import ValidationError
from typer.testing import CliRunner

from knowledge_base.embedding import Embedder, get_embedder
from knowledge_base.entry import CATEGORIES, FaqEntry
from knowledge_base.matcher import Intent, Matcher, default_kb_path, load_entries
from knowledge_base.menu_intents import load_menu_intents
from knowledge_base.settings import CourtInfo, MatcherSettings, fill_placeholders

ROOT = Path(__file__).resolve().parent.parent
LEXICAL = MatcherSettings(semantic=False)
#: the main menu as the issue describes it (the menu YAML's own phrases are measured by the navigation test)
MENU = [Intent(key="1", title="案件查询", phrases=["我要查案件进度", "查一下我的案子", "案件查询"]),
        Intent(key="3", title="联系法官", phrases=["找法官", "联系法官", "我要找承办法官"]),
        Intent(key="5", title="投诉信访", phrases=["我要投诉", "投诉法官", "信访"]),
        Intent(key="0", title="人工服务", phrases=["转人工", "人工服务", "找人工"]),
        Intent(key="*", title="重听", phrases=["再听一遍", "重听", "没听清"])]


def _bench():
    spec = importlib.util.spec_from_file_location("kb_eval_bench", ROOT / "bench" / "kb_eval.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    """The real model, loaded once per test session (the process-wide one)."""
    return get_embedder()


@pytest.fixture(scope="module")
def entries() -> list[FaqEntry]:
    return load_entries(default_kb_path())


@pytest.fixture(scope="module")
def matcher(entries) -> Matcher:
    """The lexical-only matcher (kb.semantic = false)."""
    return Matcher.build(entries, LEXICAL)


@pytest.fixture(scope="module")
def semantic(entries, embedder) -> Matcher:
    return Matcher.build(entries, MatcherSettings(), embedder=embedder)


@pytest.fixture(scope="module")
def figures(matcher) -> dict:
    bench = _bench()
    return bench.run(matcher, bench.read_jsonl(ROOT / "tests" / "data" / "kb_eval.jsonl"))


def test_default_kb_shape(entries):
    assert len(entries) >= 60
    ids = [e.id for e in entries]
    assert len(set(ids)) == len(ids) and all(i.startswith("F") for i in ids)
    for e in entries:
        assert e.category in CATEGORIES
        assert 3 <= len(e.variants) <= 8 and e.keywords
        assert len(e.answer) <= 130 and "http" not in e.answer and "www" not in e.answer


def test_eval_set_shape():
    rows = _bench().read_jsonl(ROOT / "tests" / "data" / "kb_eval.jsonl")
    assert len(rows) >= 300
    assert sum(r["kind"] == "out_of_scope" for r in rows) / len(rows) >= 0.25
    assert {r["kind"] for r in rows} == {"paraphrase", "colloquial", "homophone", "fragment", "out_of_scope"}


def test_lexical_mode_eval_figures(figures):
    # the lexical-only mode on the set its rules were fitted to (in-sample, not a prediction for unseen data):
    # measured precision 1.000, resolution (answer + confirm) 0.853, top-1 0.909, out of scope handed off 0.705
    o = figures["overall"]
    assert o["precision"] >= 0.97 and o["resolution"] >= 0.82 and o["top1"] >= 0.89
    assert o["wrong_answers"] <= 2
    assert 1 - o["oos_offered"] - o["oos_answered"] >= 0.68
    assert figures["by_kind"]["homophone"]["resolution"] >= 0.93
    assert figures["by_kind"]["fragment"]["resolution"] >= 0.95


def test_unknown_word_is_confirmed_never_answered(matcher):
    # 检察院 is nowhere in the knowledge base: the phone-number entry may be meant, but not answered
    m = matcher.match("检察院的电话是多少")
    assert m.decision != "answer"
    assert "检察" in m.reason or m.decision == "handoff"
    assert matcher.match("法院的电话是多少").decision == "answer"


@pytest.mark.parametrize(("text", "faq_id"), [
    ("朋友欠我钱一直不还我想告他", "F040"),
    ("怕他转移财产能不能先冻住他的账户", "F042"),
    ("钱还完了怎么从黑名单上撤下来", "F050"),
])
def test_colloquial_wordings_reach_their_entry(matcher, text, faq_id):
    m = matcher.match(text)
    assert m.decision in ("answer", "confirm") and m.faq_id == faq_id, m


def test_synonym_file_errors_name_the_line():
    from knowledge_base.synonyms import SynonymError, parse

    assert parse("起诉: 告他, 打官司\n# comment\n")["告他"] == "起诉"
    with pytest.raises(SynonymError, match="x.txt:2"):
        parse("起诉: 告他\n什么 啥\n", "x.txt")
    with pytest.raises(SynonymError, match="already folds"):
        parse("起诉: 告他\n投诉: 告他\n", "x.txt")


@pytest.mark.parametrize(("text", "faq_id"), [
    ("我想问一下那个速送费怎么交啊", "F008"),
    ("只行款什么时候能到啊", "F046"),
    ("素送费可以减免吗", "F011"),
    ("申请只行的期限", "F044"),
])
def test_homophones_are_answered(matcher, text, faq_id):
    r = matcher.match(text)
    assert (r.decision, r.faq_id) == ("answer", faq_id), r


@pytest.mark.parametrize(("text", "faq_id"), [("上述期限是多少天", "F014"), ("例案要带什么材料", "F001")])
def test_homophone_confirmed_at_least(matcher, text, faq_id):
    r = matcher.match(text)
    assert r.decision in ("answer", "confirm") and r.faq_id == faq_id, r


def test_out_of_scope_with_a_known_phrase_is_never_answered(matcher):
    # 怎么处理 folds to 怎么办, which many entries say; 驾照扣分 is unknown, so at most a question back
    r = matcher.match("驾照扣分怎么处理")
    assert r.decision != "answer", r


@pytest.mark.parametrize("text", ["公积金怎么提取", "今天天气怎么样啊", "给我讲个笑话"])
def test_out_of_scope_is_handed_off(matcher, text):
    r = matcher.match(text)
    assert r.decision == "handoff" and r.faq_id is None, r
    assert r.reason.startswith(("out_of_scope", "vague")), r.reason


@pytest.mark.parametrize(("text", "code"), [("", "empty"), ("   ", "empty"), ("嗯嗯啊", "empty"),
                                           ("你好请问一下", "empty"), ("喂喂", "empty"), ("案", "too_short"),
                                           ("法院", "vague")])
def test_empty_short_and_vague_queries_are_handed_off(matcher, text, code):
    r = matcher.match(text)
    assert r.decision == "handoff" and r.faq_id is None and r.reason.startswith(code + ":"), r


def test_disabled_entry_never_matches(entries):
    target = next(e for e in entries if e.id == "F046")
    disabled = SimpleNamespace(**target.model_dump(), enabled=False)
    others = [e for e in entries if e.id != "F046"]
    m = Matcher.build([*others, disabled], LEXICAL)
    assert "F046" not in m.faq_ids
    for q in (target.question, *target.variants, "只行款什么时候到"):
        r = m.match(q)
        assert r.faq_id != "F046" and all(c.faq_id != "F046" for c in r.candidates)
    enabled = SimpleNamespace(**target.model_dump(), enabled=True)
    assert Matcher.build([*others, enabled], LEXICAL).match(target.question).faq_id == "F046"


def test_confirm_band(matcher, entries):
    r = matcher.match("书记员的电话是多少")  # 法院的联系电话 and 联系书记员 are close: ask, do not answer
    assert r.decision == "confirm" and r.reason.startswith("low_margin"), r
    assert {c.faq_id for c in r.candidates[:2]} == {"F062", "F069"}
    strict = Matcher.build(entries, MatcherSettings(semantic=False, answer_threshold=1.5))
    r = strict.match("速送费怎么交")
    assert r.decision == "confirm" and r.faq_id == "F008" and r.reason.startswith("low_score"), r
    assert r.score >= strict.settings.confirm_threshold


def test_result_fields(matcher):
    r = matcher.match("执行款什么时候到账")
    assert r.decision == "answer" and r.faq_id == "F046"
    assert r.candidates[0].faq_id == "F046" and r.candidates[0].score == r.score
    assert r.margin == pytest.approx(r.score - r.candidates[1].score, abs=1e-3)
    assert list(json.loads(r.model_dump_json())) == ["query", "decision", "faq_id", "score", "margin", "reason",
                                                     "candidates", "offered", "option", "probability"]
    assert r.offered == [] and r.option is None and r.probability is None  # lexical mode: no probability


def test_matcher_is_immutable_and_settings_strict(matcher):
    with pytest.raises(AttributeError):
        matcher.settings = MatcherSettings()
    with pytest.raises(ValidationError):
        MatcherSettings(answer_treshold=0.5)
    with pytest.raises(ValidationError):
        MatcherSettings(answer_threshold=0.3, confirm_threshold=0.5)
    with pytest.raises(ValueError):
        Matcher.build([*load_entries(default_kb_path())[:2], load_entries(default_kb_path())[0]], LEXICAL)


def test_placeholders(entries):
    info = CourtInfo(court_name="某某区人民法院", office_address="某某路1号", office_hours="工作日九点到五点",
                     office_phone="1234")
    for e in entries:
        filled = fill_placeholders(e.answer, info)
        assert "{" not in filled and "}" not in filled, e.id
    assert fill_placeholders("地址是{office_address}", info) == "地址是某某路1号"


MENU_YAML = """\
version: 1
start: main
nodes:
  main:
    - gather:
        prompt: main_menu
        choices:
          "1": {node: case_query, title: 案件查询, phrases: [我要查案件进度, 查一下我的案子, 案件查询]}
          "5": {node: complaint, title: 投诉信访, phrases: [我要投诉, 投诉法官, 信访]}
          "0": {node: operator, title: 人工服务, phrases: [转人工, 人工服务]}
          "*": repeat
"""


def test_cli_ask_args_stdin_and_menu(tmp_path, monkeypatch, embedder):
    import typer

    monkeypatch.setenv("HOTLINE_HOME", str(tmp_path))  # a fresh database: the default KB is loaded into it
    monkeypatch.delenv("HOTLINE_CONFIG", raising=False)

    from hotline.cli_kb_ask import ask

    app = typer.Typer()
    app.command()(ask)

    @app.callback()
    def _root() -> None:
        pass

    # a fragment with entries close to it: the caller is asked which (F056 first)
    r = CliRunner().invoke(app, ["ask", "判决书", "公积金怎么提取", "法院的电话是多少"])
    assert r.exit_code == 0, r.output
    lines = [json.loads(x) for x in r.output.splitlines()]
    assert [x["decision"] for x in lines] == ["clarify", "handoff", "answer"]
    assert lines[0]["offered"][0] == "F056" and 2 <= len(lines[0]["offered"]) <= 3 and lines[0]["faq_id"] is None
    assert lines[1]["faq_id"] is None and lines[1]["offered"] == []
    assert lines[2]["faq_id"] == "F062" and lines[2]["offered"] == [] and lines[2]["reason"].startswith("confident: p=")
    assert set(lines[0]) == {"query", "decision", "faq_id", "score", "margin", "reason", "candidates", "offered",
                             "option", "probability"}
    assert set(lines[0]["candidates"][0]) == {"faq_id", "score"}
    r = CliRunner().invoke(app, ["ask"], input="只行款什么时候能到啊\n\n今天天气怎么样\n")
    assert r.exit_code == 0, r.output
    # one line per non-blank question: the homophone 只行款 = 执行款 reaches F046 (answered or offered first)
    got = [x["faq_id"] or (x["offered"] or [None])[0] for x in map(json.loads, r.output.splitlines())]
    assert got == ["F046", None]

    menu = tmp_path / "menu.yaml"
    menu.write_text(MENU_YAML, encoding="utf-8")
    cfg = tmp_path / "hotline.toml"
    cfg.write_text(f'[ivr]\nmenu_file = "{menu}"\n', encoding="utf-8")
    r = CliRunner().invoke(app, ["ask", "--menu", "main", "--config", str(cfg), "我想投诉一个法官", "法院的电话是多少"])
    assert r.exit_code == 0, r.output
    complaint, phone = (json.loads(x) for x in r.output.splitlines())
    assert (complaint["decision"], complaint["option"], complaint["faq_id"]) == ("answer", "5", None), complaint
    # a question at the menu goes to the knowledge base (the menu's stricter rule may ask which entry)
    assert phone["option"] is None and ([phone["faq_id"]] if phone["faq_id"] else phone["offered"])[0] == "F062"
    r = CliRunner().invoke(app, ["ask", "--menu", "nowhere", "--config", str(cfg), "我要投诉"])
    assert r.exit_code == 2 and "nowhere" in r.output


def test_rest_match_requires_console_role(semantic):
    from agent_console.deps import current_user
    from agent_console.kb_match import router

    app = FastAPI()
    app.include_router(router)
    # the hub's live matcher follows the database; here the shipped KB stands in for it
    app.state.kb_matcher = SimpleNamespace(match=semantic.match)
    role = {"r": "operator"}
    app.dependency_overrides[current_user] = lambda: SimpleNamespace(role=role["r"])
    client = TestClient(app)
    r = client.post("/api/kb/match", json={"text": "执行款什么时候能到啊"})
    assert r.status_code == 200 and r.json()["faq_id"] == "F046" and r.json()["decision"] == "answer"
    assert r.json()["candidates"][0]["faq_id"] == "F046" and r.json()["offered"] == []
    r = client.post("/api/kb/match", json={"text": "保全"})
    assert r.json()["decision"] == "clarify" and r.json()["offered"][0] == "F042" and r.json()["option"] is None
    assert client.post("/api/kb/match", json={"txt": "x"}).status_code == 422
    role["r"] = "handler"
    assert client.post("/api/kb/match", json={"text": "速送费怎么交"}).status_code == 403


# ---------------------------------------------------------------- the semantic matcher


@pytest.fixture(scope="module")
def heldout(embedder) -> dict:
    """bench/kb_eval.py's figures on the held-out FAQ and questions (never tuned on)."""
    bench = _bench()
    faq = json.loads((ROOT / "tests" / "data" / "kb_heldout_faq.json").read_text(encoding="utf-8"))
    rows = [bench.normalise_row(r, False) for r in bench.read_jsonl(ROOT / "tests" / "data" / "kb_heldout_eval.jsonl")]
    m = Matcher.build([FaqEntry.model_validate(o) for o in faq], MatcherSettings(), embedder=embedder)
    return bench.run(m, rows)


@pytest.mark.timeout(900)  # ~800 queries embedded one by one (~30 s on an idle core; far more on a loaded one)
def test_heldout_figures(heldout):
    # measured on 779 questions against 83 unseen entries (calibration v8: re-ranker + decision fitted on thinned
    # copies of the default KB): precision 0.994 (1 wrong answer), answer recall 0.320, resolution 0.909, out of
    # scope answered 0.000, handoff share 0.268 (goals 0.98 / 0.60 / 0.90 / 0.01: answer recall falls short);
    # guarded slightly below what was reached
    o = heldout["overall"]
    assert o["precision"] >= 0.985
    assert o["resolution"] >= 0.90
    assert o["answer_recall"] >= 0.30
    assert o["oos_answered"] <= 0.01
    assert o["wrong_answers"] <= 5
    assert heldout["by_kind"]["asr_noise"]["resolution"] >= 0.93  # the lexical half absorbs recognizer errors


@pytest.mark.timeout(900)
def test_heldout_navigation(semantic):
    intents = load_menu_intents(ROOT / "ivr" / "menus" / "default.yaml", "main")
    if not intents:
        pytest.skip("ivr/menus/default.yaml has no spoken phrases under main (the dialogue branch adds them)")
    bench = _bench()
    rows = [bench.normalise_row(r, True) for r in bench.read_jsonl(ROOT / "tests" / "data" / "nav_heldout.jsonl")]
    o = bench.run(semantic, rows, intents)["overall"]
    # measured (calibration v9): precision 1.000 (no wrong navigation), option answer recall 0.509, resolution
    # 0.876, questions taken to the knowledge base 0.893 and answered at once 0.643 (the question rule decides, on
    # the entries ordered by the question re-ranker, when an entry ranks first and no option is close), nothing
    # answered for the 26 utterances that are neither
    assert o["precision"] >= 0.98 and o["resolution"] >= 0.86 and o["answer_recall"] >= 0.49
    assert o["kb_to_faq"] >= 0.88 and o["kb_answered"] >= 0.62
    assert o["oos_answered"] <= 0.01


@pytest.mark.parametrize(("text", "faq_id"), [("法院的电话是多少", "F062"), ("执行款什么时候能到啊", "F046"),
                                              ("书记员的电话是多少", "F069")])
def test_semantic_answers_name_the_probability(semantic, text, faq_id):
    r = semantic.match(text)
    assert (r.decision, r.faq_id, r.offered, r.option) == ("answer", faq_id, [], None), r
    assert r.probability is not None and r.reason.startswith(f"confident: p={r.probability:.2f} >= "), r.reason


@pytest.mark.parametrize(("text", "first"), [("判决书", "F056"), ("开庭", "F027"), ("调解", "F031")])
def test_close_entries_are_offered_in_a_clarify(semantic, text, first):
    r = semantic.match(text)
    assert r.decision == "clarify" and r.faq_id is None and r.option is None, r
    assert r.offered[0] == first and 2 <= len(r.offered) <= 3 and len(set(r.offered)) == len(r.offered)
    assert r.offered == [c.faq_id for c in r.candidates[:len(r.offered)]]  # spoken in ranking order
    assert r.reason.startswith("close: p=") and "p(top3)=" in r.reason, r.reason


@pytest.mark.parametrize(("text", "faq_id"), [("速送费怎么交", "F008"), ("只行款什么时候能到啊", "F046")])
def test_homophones_are_confirmed(semantic, text, faq_id):
    # 速送费 = 诉讼费, 只行款 = 执行款: the re-ranker puts the entry far ahead of the others (no clarify list), the
    # calibrated p stays below the answer threshold, so the one entry is confirmed
    r = semantic.match(text)
    assert (r.decision, r.faq_id, r.offered) == ("confirm", faq_id, [faq_id]), r
    assert r.reason.startswith("unsure: p="), r.reason


def test_confirm_offers_one(entries, embedder):
    from dataclasses import replace

    from knowledge_base import calibration

    cal = calibration.load()
    # a confirm zone that takes everything below the answer threshold, with no runner-up close enough
    cal = replace(cal, faq=replace(cal.faq, confirm=0.0, clarify_window=0.0))
    m = Matcher.build(entries, MatcherSettings(), embedder=embedder, cal=cal)
    r = m.match("速送费怎么交")
    assert (r.decision, r.faq_id, r.offered) == ("confirm", "F008", ["F008"]), r
    assert r.reason.startswith("unsure: p="), r.reason


@pytest.mark.parametrize("text", ["公积金怎么提取", "今天天气怎么样啊", "给我讲个笑话"])
def test_semantic_out_of_scope_is_handed_off(semantic, text):
    r = semantic.match(text)
    assert (r.decision, r.faq_id, r.offered) == ("handoff", None, []), r
    assert r.reason.startswith("low_probability: p="), r.reason


@pytest.mark.parametrize(("text", "code"), [("", "empty"), ("嗯嗯啊", "empty"), ("案", "too_short")])
def test_semantic_empty_and_short(semantic, text, code):
    r = semantic.match(text)
    assert r.decision == "handoff" and r.reason.startswith(code + ":") and r.probability is None, r


@pytest.mark.parametrize(("text", "key"), [("我要投诉", "5"), ("我要查案件进度", "1"), ("找法官", "3"),
                                          ("转人工", "0"), ("再听一遍", "*")])
def test_menu_options_ranked_with_entries(semantic, text, key):
    r = semantic.match(text, intents=MENU)
    assert (r.decision, r.option, r.faq_id, r.offered) == ("answer", key, None, []), r


def test_a_question_at_the_menu_goes_to_the_knowledge_base(semantic):
    r = semantic.match("法院的电话是多少", intents=MENU)
    assert r.option is None and r.decision in ("answer", "clarify"), r
    assert ([r.faq_id] if r.faq_id else r.offered)[0] == "F062", r
    r = semantic.match("诉讼费什么时候退", intents=MENU)  # asked outright at the main menu: answered at once
    assert (r.decision, r.faq_id, r.option) == ("answer", "F012", None), r


def test_unsure_between_options_asks_which(entries, embedder, semantic):
    from dataclasses import replace

    from knowledge_base import calibration

    cal = calibration.load()
    never = replace(cal, menu=replace(cal.menu, answer=1.01, confirm=1.01, offer=0.0, clarify_window=0.5))
    m = Matcher.build(entries, MatcherSettings(), embedder=embedder, cal=never)
    r = m.match("投诉信访", intents=MENU[:3])
    assert r.decision == "clarify" and r.offered[0] == "option:5" and r.option is None, r
    # the options are embedded once per distinct set: the same menu gives the same cached matcher
    assert semantic.with_intents(MENU) is semantic.with_intents([i.model_dump() for i in MENU])
    assert semantic.with_intents(MENU) is not semantic.with_intents(MENU[:2])
