#!/usr/bin/env python3
"""Regenerate fixture.json: Piper's own phonemes and ids for every line of sentences.txt.

Reference implementation: the `piper-tts` Python package (not needed at run time or in CI):

    python3 -m venv /tmp/piper-venv && /tmp/piper-venv/bin/pip install piper-tts==1.8.0
    /tmp/piper-venv/bin/python tests/conformance/generate.py VOICE.onnx

VOICE.onnx is the default voice (`demod-voice setup` puts it in ~/.local/share/demod-voice/voices/).
"""
import json
import sys
from pathlib import Path

from piper import PiperVoice

HERE = Path(__file__).parent


def main() -> None:
    voice = PiperVoice.load(sys.argv[1])
    import piper

    cases = []
    for line in (HERE / "sentences.txt").read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        sentences = voice.phonemize(line)
        cases.append(
            {
                "text": line,
                "sentences": [
                    {"phonemes": "".join(p), "phoneme_ids": voice.phonemes_to_ids(p)}
                    for p in sentences
                ],
            }
        )
    fixture = {
        "generator": f"piper-tts {getattr(piper, '__version__', '1.8.0')}",
        "voice": Path(sys.argv[1]).name,
        "cases": cases,
    }
    # One case per line keeps diffs of a regenerated fixture readable.
    lines = [json.dumps(case, ensure_ascii=False) for case in fixture.pop("cases")]
    head = json.dumps(fixture, ensure_ascii=False)[:-1]
    text = head + ', "cases": [\n' + ",\n".join(lines) + "\n]}\n"
    (HERE / "fixture.json").write_text(text, encoding="utf-8")
    print(f"wrote {len(cases)} cases")


if __name__ == "__main__":
    main()
