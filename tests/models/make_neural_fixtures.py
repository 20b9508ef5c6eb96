#!/usr/bin/env python3
"""Tiny ONNX graphs with the real input and output names, dtypes and shapes of the neural conversion models
demod-voice reads (docs/models.md), for tests of signature detection and plumbing. Not voices: the audio they
produce is a deterministic function of their inputs (frame means scaled by pitch, speaker or tone), nothing more.

    python3 -m venv /tmp/onnx-venv && /tmp/onnx-venv/bin/pip install onnx
    /tmp/onnx-venv/bin/python tests/models/make_neural_fixtures.py

Writes core/tests/data/neural/*.onnx (a few hundred bytes each).
"""
import json
from pathlib import Path

import onnx
from onnx import TensorProto, helper

OUT = Path(__file__).resolve().parents[2] / "core" / "tests" / "data" / "neural"
F, I = TensorProto.FLOAT, TensorProto.INT64


def const(name, values, dtype=I):
    return helper.make_node("Constant", [], [name], value=helper.make_tensor(name + "_v", dtype, [len(values)], values))


def save(graph, name, metadata=None):
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], producer_name="demod-voice-tests")
    model.ir_version = 8
    if metadata is not None:
        model.metadata_props.append(onnx.StringStringEntryProto(key="metadata", value=json.dumps(metadata)))
    onnx.checker.check_model(model)
    OUT.mkdir(parents=True, exist_ok=True)
    onnx.save(model, OUT / name)


def frames_to_audio(frame_values, samples_per_frame, out_name):
    """[1,T] frame values -> [1,1,T*samples_per_frame] step audio."""
    return [
        const("axes_last", [2]),
        helper.make_node("Unsqueeze", [frame_values, "axes_last"], ["fv3"]),  # [1,T,1]
        const("rep", [1, 1, samples_per_frame]),
        helper.make_node("Tile", ["fv3", "rep"], ["tiled"]),  # [1,T,S]
        const("shape_out", [1, 1, -1]),
        helper.make_node("Reshape", ["tiled", "shape_out"], [out_name]),
    ]


def rvc(name, feature_input, length_input, pitch, extra, channels=768, rate=40000, metadata=True):
    hop = rate // 100
    inputs = [
        helper.make_tensor_value_info(feature_input, F, [1, "T", channels]),
        helper.make_tensor_value_info(length_input, I, [1]),
    ]
    if pitch:
        inputs += [
            helper.make_tensor_value_info("pitch", I, [1, "T"]),
            helper.make_tensor_value_info("pitchf", F, [1, "T"]),
        ]
    inputs += extra
    nodes = [
        const("axes_c", [2]),
        helper.make_node("ReduceMean", [feature_input, "axes_c"], ["mean"], keepdims=0),  # [1,T]
    ]
    if pitch:
        nodes += [
            const("scale", [0.001], F),
            helper.make_node("Mul", ["pitchf", "scale"], ["pf"]),
            helper.make_node("Mul", ["mean", "pf"], ["frame"]),
        ]
    else:
        nodes += [helper.make_node("Identity", ["mean"], ["frame"])]
    # The speaker id scales the output by (1 + id), so a test can tell which speaker the model was asked for.
    speaker = next(i.name for i in extra if i.name in ("sid", "ds"))
    nodes += [
        helper.make_node("Cast", [speaker], ["speaker_f"], to=F),
        const("one_f", [1.0], F),
        helper.make_node("Add", ["speaker_f", "one_f"], ["speaker_gain"]),
        helper.make_node("Mul", ["frame", "speaker_gain"], ["voiced"]),
    ]
    nodes += frames_to_audio("voiced", hop, "audio")
    graph = helper.make_graph(nodes, name, inputs, [helper.make_tensor_value_info("audio", F, [1, 1, "N"])])
    meta = {"samplingRate": rate, "f0": 1 if pitch else 0, "embChannels": channels, "embOutputLayer": 12,
            "useFinalProj": False, "version": "v2"}
    save(graph, name, meta if metadata else None)


def main():
    # RVC WebUI export: phone, phone_lengths, pitch, pitchf, ds, rnd.
    rvc("rvc_webui.onnx", "phone", "phone_lengths", True,
        [helper.make_tensor_value_info("ds", I, [1]), helper.make_tensor_value_info("rnd", F, [1, 192, "T"])],
        metadata=False)
    # w-okada export: feats, p_len, pitch, pitchf, sid (with its metadata JSON); and a no-pitch model.
    rvc("rvc_okada.onnx", "feats", "p_len", True, [helper.make_tensor_value_info("sid", I, [1])])
    rvc("rvc_okada_nopitch.onnx", "feats", "p_len", False, [helper.make_tensor_value_info("sid", I, [1])],
        channels=256, rate=32000)

    # Content encoder (HuBERT / ContentVec): 16 kHz audio -> [1, T, 768] features, one frame per 320 samples.
    nodes = [
        const("shape_frames", [1, -1, 320]),
        helper.make_node("Reshape", ["source", "shape_frames"], ["framed"]),
        const("axes_s", [2]),
        helper.make_node("ReduceMean", ["framed", "axes_s"], ["energy"], keepdims=1),  # [1,T,1]
        const("rep_c", [1, 1, 768]),
        helper.make_node("Tile", ["energy", "rep_c"], ["features"]),
    ]
    graph = helper.make_graph(nodes, "content", [helper.make_tensor_value_info("source", F, [1, "N"])],
                              [helper.make_tensor_value_info("features", F, [1, "T", 768])])
    save(graph, "content_encoder.onnx")

    # OpenVoice-format tone colour: extractor [1,T,513] -> [1,256].
    nodes = [
        const("axes_t", [1]),
        helper.make_node("ReduceMean", ["input", "axes_t"], ["avg"], keepdims=0),  # [1,513]
        const("starts", [0]), const("ends", [256]), const("axes_f", [1]),
        helper.make_node("Slice", ["avg", "starts", "ends", "axes_f"], ["tone"]),
    ]
    graph = helper.make_graph(nodes, "tone_extractor", [helper.make_tensor_value_info("input", F, [1, "T", 513])],
                              [helper.make_tensor_value_info("tone", F, [1, 256])])
    save(graph, "tone_extractor.onnx")

    # Converter: audio [1,513,T], audio_length [1], src_tone, dest_tone [1,256,1], tau [1] -> [1,1,T*256].
    nodes = [
        const("axes_f1", [1]),
        helper.make_node("ReduceMean", ["audio", "axes_f1"], ["frame3"], keepdims=0),  # [1,T]
        helper.make_node("Sub", ["dest_tone", "src_tone"], ["diff"]),
        helper.make_node("ReduceMean", ["diff"], ["shift"], keepdims=0),  # scalar
        helper.make_node("Mul", ["shift", "tau"], ["moved"]),
        const("one", [1.0], F),
        helper.make_node("Add", ["one", "moved"], ["gain"]),
        helper.make_node("Mul", ["frame3", "gain"], ["frame"]),
    ] + frames_to_audio("frame", 256, "converted")
    inputs = [
        helper.make_tensor_value_info("audio", F, [1, 513, "T"]),
        helper.make_tensor_value_info("audio_length", I, [1]),
        helper.make_tensor_value_info("src_tone", F, [1, 256, 1]),
        helper.make_tensor_value_info("dest_tone", F, [1, 256, 1]),
        helper.make_tensor_value_info("tau", F, [1]),
    ]
    graph = helper.make_graph(nodes, "tone_converter", inputs, [helper.make_tensor_value_info("converted", F, [1, 1, "N"])])
    save(graph, "tone_converter.onnx")
    # RMVPE pitch models, in the three forms RVC projects export (docs/models.md). Each gives a steady pitch so a
    # test can tell it reached the voice model: the w-okada waveform form 200 Hz per 160 samples, the w-okada mel
    # form 150 Hz per mel frame, the WebUI form a salience peak at bin 100 (about 100.6 Hz) per mel frame.
    nodes = [
        const("shape_hops", [-1, 160]),
        helper.make_node("Reshape", ["waveform", "shape_hops"], ["hops"]),  # [T,160]
        const("axes_h", [1]),
        helper.make_node("ReduceMean", ["hops", "axes_h"], ["hop_mean"], keepdims=0),  # [T]
        const("zero", [0.0], F), const("hz", [200.0], F),
        helper.make_node("Mul", ["hop_mean", "zero"], ["nothing"]),
        helper.make_node("Add", ["nothing", "hz"], ["pitchf"]),
    ]
    inputs = [helper.make_tensor_value_info("waveform", F, [1, "N"]), helper.make_tensor_value_info("threshold", F, [1])]
    graph = helper.make_graph(nodes, "rmvpe_waveform", inputs, [helper.make_tensor_value_info("pitchf", F, ["T"])])
    save(graph, "rmvpe_waveform.onnx")

    nodes = [
        const("axes_m", [1]),
        helper.make_node("ReduceMean", ["mel", "axes_m"], ["mel_mean"], keepdims=0),  # [1,T]
        const("zero", [0.0], F), const("hz", [150.0], F),
        helper.make_node("Mul", ["mel_mean", "zero"], ["nothing"]),
        helper.make_node("Add", ["nothing", "hz"], ["pitchf"]),
    ]
    inputs = [helper.make_tensor_value_info("mel", F, [1, 128, "T"]), helper.make_tensor_value_info("threshold", F, [])]
    graph = helper.make_graph(nodes, "rmvpe_mel", inputs, [helper.make_tensor_value_info("pitchf", F, [1, "T"])])
    save(graph, "rmvpe_mel.onnx")

    peak = [1.0 if i == 100 else (0.5 if i in (99, 101) else 0.0) for i in range(360)]
    nodes = [
        const("axes_m", [1]),
        helper.make_node("ReduceMean", ["input", "axes_m"], ["mel_mean"], keepdims=0),  # [1,T]
        const("axes_last", [2]),
        helper.make_node("Unsqueeze", ["mel_mean", "axes_last"], ["mel3"]),  # [1,T,1]
        const("zero", [0.0], F),
        helper.make_node("Mul", ["mel3", "zero"], ["nothing"]),
        helper.make_node("Constant", [], ["peak"], value=helper.make_tensor("peak_v", F, [1, 1, 360], peak)),
        helper.make_node("Add", ["nothing", "peak"], ["salience"]),  # [1,T,360]
    ]
    inputs = [helper.make_tensor_value_info("input", F, [1, 128, "T"])]
    graph = helper.make_graph(nodes, "rmvpe_webui", inputs, [helper.make_tensor_value_info("salience", F, [1, "T", 360])])
    save(graph, "rmvpe_webui.onnx")
    print("wrote", sorted(p.name for p in OUT.glob("*.onnx")))


if __name__ == "__main__":
    main()
