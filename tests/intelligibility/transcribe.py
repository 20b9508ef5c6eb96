#!/usr/bin/env python3
"""Transcribe WAV files with PocketSphinx (an independent, offline speech recogniser whose wheel carries its
US English model) and print one JSON line per file: {"path": ..., "text": ...}.

Used by tui/tests/intelligibility.rs, which makes the virtual environment:
    python3 -m venv VENV && VENV/bin/pip install pocketsphinx==5.1.1
    VENV/bin/python tests/intelligibility/transcribe.py a.wav b.wav
"""
import array
import json
import sys
import wave

from pocketsphinx import Decoder

MODEL_RATE = 16000


def read_mono_16k(path: str) -> bytes:
    with wave.open(path, "rb") as wav:
        assert wav.getsampwidth() == 2 and wav.getnchannels() == 1, "16-bit mono expected"
        rate = wav.getframerate()
        samples = array.array("h", wav.readframes(wav.getnframes()))
    if rate == MODEL_RATE:
        return samples.tobytes()
    # Linear interpolation is plenty for recognition.
    out = array.array("h")
    step = rate / MODEL_RATE
    position = 0.0
    last = len(samples) - 1
    while position < last:
        idx = int(position)
        frac = position - idx
        out.append(int(samples[idx] * (1.0 - frac) + samples[idx + 1] * frac))
        position += step
    return out.tobytes()


def main() -> None:
    decoder = Decoder(samprate=MODEL_RATE)
    for path in sys.argv[1:]:
        decoder.start_utt()
        decoder.process_raw(read_mono_16k(path), full_utt=True)
        decoder.end_utt()
        hyp = decoder.hyp()
        print(json.dumps({"path": path, "text": hyp.hypstr if hyp else ""}), flush=True)


if __name__ == "__main__":
    main()
