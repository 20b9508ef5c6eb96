#!/usr/bin/env python3
"""Regenerate fixture.json: Piper's own phonemes for every line of LANG.txt in this folder, per espeak-ng voice.

Each file is named after the espeak-ng voice Piper's voices of that language use (`espeak.voice` in their
`.onnx.json`): de, fr, es, it, pt-br, nl, ru, and cmn for Mandarin. Phoneme ids are not stored: Piper's espeak
voices share one phoneme id map, and the test maps the phonemes with the default voice's.

Reference implementation: the `piper-tts` Python package and the espeak-ng data inside it (not needed at run
time or in CI):

    python3 -m venv /tmp/piper-venv && /tmp/piper-venv/bin/pip install piper-tts==1.8.0
    /tmp/piper-venv/bin/python tests/conformance/languages/generate.py
"""
import json
from pathlib import Path

import piper
from piper.phonemize_espeak import EspeakPhonemizer

HERE = Path(__file__).parent


def main() -> None:
    phonemizer = EspeakPhonemizer()
    languages = {}
    for path in sorted(HERE.glob("*.txt")):
        voice = path.stem
        cases = []
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            sentences = phonemizer.phonemize(voice, line)
            cases.append({"text": line, "sentences": ["".join(p) for p in sentences]})
        languages[voice] = cases
    head = {"generator": f"piper-tts {getattr(piper, '__version__', '1.8.0')} EspeakPhonemizer"}
    # One case per line keeps diffs of a regenerated fixture readable.
    parts = []
    for voice, cases in languages.items():
        lines = ",\n".join(json.dumps(case, ensure_ascii=False) for case in cases)
        parts.append(f"{json.dumps(voice)}: [\n{lines}\n]")
    text = json.dumps(head, ensure_ascii=False)[:-1] + ', "languages": {\n' + ",\n".join(parts) + "\n}}\n"
    (HERE / "fixture.json").write_text(text, encoding="utf-8")
    print(f"wrote {sum(len(c) for c in languages.values())} cases in {len(languages)} languages")


if __name__ == "__main__":
    main()
