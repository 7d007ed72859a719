"""Run the speech service: load the recognizer once, serve IVR workers until SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import threading
from pathlib import Path

import structlog
import yaml

from hotline.settings import Settings
from ivr.kb_phrases import ORDINALS, confirm_sentence, list_fragment, option_confirm_sentence

log = structlog.get_logger(__name__)

# The court's basic services, then the knowledge base's most used words. CER on the 30 telephone
# questions of tests/data/speech with the shipped KB: this 10.3 %; the KB's top 10 words alone 13.1 %;
# asr's fixed prompt 11.4 %; no domain words 17.0 %.
PROMPT_CORE = ("法院立案", "上诉", "执行", "案件进度")


def domain_prompt(s: Settings) -> str | None:
    """A short Simplified-Chinese prompt naming the knowledge base's most used words (unless an admin set
    ``asr.initial_prompt``): it keeps whisper in simplified characters and in the court's vocabulary."""
    from asr.settings import DEFAULT_PROMPT
    from hotline.db import make_engine, session_factory
    from knowledge_base.store import list_entries
    from knowledge_base.vocabulary import top_terms

    if s.asr.initial_prompt != DEFAULT_PROMPT:
        return None
    engine = make_engine(s.db_url)
    try:
        with session_factory(engine)() as db:
            terms = top_terms(list_entries(db, enabled=True), 12)
    except Exception as e:  # no database yet: the built-in prompt will do
        log.warning("domain_prompt_default", error=str(e))
        return None
    finally:
        engine.dispose()
    core = list(PROMPT_CORE)
    words = core + [t for t in terms if not any(t in c or c in t for c in core)][:5]
    return f"以下是普通话的句子，关于{'、'.join(words)}。"


def build_service(s: Settings):
    from asr.service import SpeechService

    prompt = domain_prompt(s)
    if prompt:
        s = s.model_copy(update={"asr": s.asr.model_copy(update={"initial_prompt": prompt})})
        log.info("domain_prompt", prompt=prompt)

    decode_many = None
    vosk = None
    if s.asr.vosk_model_dir is not None:
        from asr.vosk_engine import VoskEngine

        vosk = VoskEngine(s.asr.vosk_model_dir, s.asr.vosk_grammar)
    if s.asr.engine == "whisper":
        from asr.whisper_engine import WhisperEngine

        engine = WhisperEngine(s.asr.whisper_dir(s.home), s.asr)  # raises ModelError naming the dir
        decode_many = engine.transcribe_many
    return SpeechService(s.asr, decode_many, vosk=vosk, max_wait_s=s.speech.max_wait_s,
                         max_batch=s.speech.max_batch, session_threads=s.speech.session_threads,
                         synthesize=_synthesizer(s))


def _synthesizer(s: Settings):
    """text, rate -> PCM16 bytes through the TTS renderer's cache; None when the voice is not installed."""
    from tts.renderer import Renderer

    venv = s.tts.venv_path(s.home)
    if not (venv / "bin" / "python").exists():
        log.warning("tts_not_installed", venv=str(venv), fix="scripts/setup_tts_venv.sh")
        return None
    renderer = Renderer.from_settings(s.tts, s.home)

    def synthesize(text: str, rate: int) -> bytes:
        from ivr.audio import read_wav

        return read_wav(renderer.render(text, rate), rate)

    synthesize.renderer = renderer  # type: ignore[attr-defined]
    return synthesize


def menu_titles(menu_file) -> list[str]:
    """The spoken titles of every option of every listening menu (``gather`` with ``speech: true``) in the
    menu file; [] when it cannot be read (the workers report a broken menu themselves)."""
    try:
        data = yaml.safe_load(Path(menu_file).read_text(encoding="utf-8"))
        titles = []
        for verbs in (data.get("nodes") or {}).values():
            for verb in verbs or []:
                gather = verb.get("gather") if isinstance(verb, dict) else None
                if isinstance(gather, dict) and gather.get("speech"):
                    titles += [c["title"] for c in (gather.get("choices") or {}).values()
                               if isinstance(c, dict) and isinstance(c.get("title"), str)]
        return titles
    except (OSError, yaml.YAMLError, AttributeError, TypeError) as e:
        log.warning("prerender_menu_unreadable", menu=str(menu_file), error=str(e))
        return []


def dialogue_texts(entries, menu_titles: list[str], fill) -> list[str]:
    """What the caller may hear of the knowledge-base dialogue, most needed first: every answer; every confirm
    sentence; each title as item 一/二/三 of a list (ivr/kb_phrases.py) — for entries and menu options."""
    answers = [fill(e.answer) for e in entries]
    confirms = [confirm_sentence(fill(e.question)) for e in entries] + [option_confirm_sentence(t) for t in menu_titles]
    titles = [fill(getattr(e, "title", None) or e.question) for e in entries] + menu_titles
    items = [list_fragment(i, t) for t in titles for i in range(1, len(ORDINALS) + 1)]
    return list(dict.fromkeys(answers + confirms + items))


def prerender_answers(s: Settings, synthesize, stop, progress: dict | None = None) -> None:
    """Keep every enabled FAQ answer, confirm sentence and list item rendered (8 kHz) so callers never wait for the
    voice; follows edits of the knowledge base and of the menu file. ``progress`` (the service's ``{"stats": 1}``)
    gets ``total`` and ``rendered`` of the current pass and ``ready`` once a pass has finished."""
    progress = progress if progress is not None else {}
    progress.update(total=0, rendered=0, ready=False)
    from hotline.db import make_engine, session_factory
    from knowledge_base.settings import fill_placeholders
    from knowledge_base.store import kb_stamp, list_entries

    engine = make_engine(s.db_url)
    seen: tuple | None = None
    try:
        while not stop.is_set():
            try:
                titles = menu_titles(s.ivr.menu_file)
                with session_factory(engine)() as db:
                    stamp = (kb_stamp(db), tuple(titles))
                    texts = [] if stamp == seen else dialogue_texts(
                        list_entries(db, enabled=True), titles, lambda t: fill_placeholders(t, s.court))
                progress.update(total=len(texts), rendered=0)
                for text in texts:
                    if stop.is_set():
                        break
                    synthesize(text, s.sip.clock_rate)
                    progress["rendered"] += 1
                seen = stamp
                progress["ready"] = True
            except Exception as e:  # the database may not be migrated yet, the voice may fail: retry
                log.warning("prerender_failed", error=str(e))
            stop.wait(10.0)
    finally:
        engine.dispose()


async def _main(s: Settings) -> None:
    service = build_service(s)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    halt = threading.Event()
    if service.synthesize is not None and s.speech.prerender_answers:
        threading.Thread(target=prerender_answers, args=(s, service.synthesize, halt, service.prerender),
                         daemon=True, name="prerender").start()
    try:
        await service.serve(s.speech.host, s.speech.port, stop)
    finally:
        halt.set()
        renderer = getattr(service.synthesize, "renderer", None)
        if renderer is not None:
            renderer.close()


def run_speech(s: Settings) -> None:
    asyncio.run(_main(s))
