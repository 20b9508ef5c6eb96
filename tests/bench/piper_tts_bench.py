#!/usr/bin/env python3
"""Measure the reference `piper-tts` exactly as `demod-voice bench` measures itself.

Same paragraph (paragraph.txt), same voice file, same ONNX Runtime version, same intra-op threads; load time,
best-of-N synthesis time after one warm-up pass, real-time factor, and time to the first sentence's audio.

    python3 -m venv /tmp/piper-venv
    /tmp/piper-venv/bin/pip install piper-tts==1.8.0 onnxruntime==1.31.1
    /tmp/piper-venv/bin/python tests/bench/piper_tts_bench.py VOICE.onnx --threads 2 [--json]
"""
import argparse
import json
import time
from pathlib import Path

import onnxruntime
from piper import PiperVoice
from piper.config import PiperConfig

HERE = Path(__file__).parent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    paragraph = (HERE / "paragraph.txt").read_text(encoding="utf-8")

    started = time.perf_counter()
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = args.threads
    session = onnxruntime.InferenceSession(args.model, sess_options=options, providers=["CPUExecutionProvider"])
    config = PiperConfig.from_dict(json.loads(Path(args.model + ".json").read_text(encoding="utf-8")))
    voice = PiperVoice(session=session, config=config)
    load_seconds = time.perf_counter() - started

    for _ in voice.synthesize(paragraph):  # warm-up, as demod-voice bench does
        pass
    best = None
    for _ in range(max(1, args.runs)):
        started = time.perf_counter()
        first = None
        samples = 0
        for chunk in voice.synthesize(paragraph):
            if first is None:
                first = time.perf_counter() - started
            samples += len(chunk.audio_int16_array)
        total = time.perf_counter() - started
        run = (total, samples / config.sample_rate, first)
        if best is None or run[0] < best[0]:
            best = run
    synth_seconds, audio_seconds, first_audio = best
    report = {
        "implementation": "piper-tts",
        "threads": args.threads,
        "onnxruntime": onnxruntime.__version__,
        "load_seconds": load_seconds,
        "audio_seconds": audio_seconds,
        "synth_seconds": synth_seconds,
        "real_time_factor": synth_seconds / audio_seconds,
        "first_audio_seconds": first_audio,
        "runs": args.runs,
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for key, value in report.items():
            print(f"{key:<20} {value}")


if __name__ == "__main__":
    main()
