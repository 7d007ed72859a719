"""The recognizer's domain prompt is built from the knowledge base's own words."""

from __future__ import annotations

from knowledge_base.entry import FaqEntry
from knowledge_base.matcher import default_kb_path, load_entries
from knowledge_base.vocabulary import top_terms


def test_top_terms_are_the_kbs_most_used_keywords():
    entries = load_entries(default_kb_path())
    terms = top_terms(entries, 10)
    texts = [t for e in entries for t in (e.question, *e.variants)]
    assert len(terms) == 10 and len(set(terms)) == 10
    assert "诉讼费" in terms  # the most asked-about word of the shipped KB
    assert all(any(t in x for x in texts) for t in terms)
    assert not any(a != b and a in b for a in terms for b in terms)


def test_disabled_entries_do_not_shape_the_prompt():
    a = FaqEntry(id="A1", category="consult", question="退费怎么办理", variants=["退费要多久"], answer="答复。",
                 keywords=["退费"])
    b = FaqEntry(id="B1", category="consult", question="鉴定怎么申请", variants=["鉴定费"], answer="答复。",
                 keywords=["鉴定"])
    off = type("Off", (), {**b.model_dump(), "enabled": False})()
    assert top_terms([a, off], 5) == ["退费"]


def test_the_speech_service_prompt_names_the_core_services_and_kb_words(tmp_path, monkeypatch):
    from hotline.settings import load_settings
    from hotline.speech_main import PROMPT_CORE, domain_prompt

    for k in ("HOTLINE_CONFIG", "HOTLINE_ASR__INITIAL_PROMPT", "HOTLINE_DATABASE_URL"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("HOTLINE_HOME", str(tmp_path))
    from hotline.db import make_engine, upgrade_engine
    from hotline.hub_main import load_default_kb

    engine = make_engine(load_settings().db_url)
    upgrade_engine(engine)
    assert load_default_kb(engine) == 74
    engine.dispose()
    prompt = domain_prompt(load_settings())
    assert prompt.startswith("以下是普通话的句子，关于") and all(w in prompt for w in PROMPT_CORE)
    assert "诉讼费" in prompt and len(prompt) < 60
    monkeypatch.setenv("HOTLINE_ASR__INITIAL_PROMPT", "以下是普通话。")
    assert domain_prompt(load_settings()) is None  # an admin's own prompt wins
