#!/usr/bin/env python3
"""Generate the tiny Piper-shaped ONNX graphs used by core's plumbing tests (a few hundred bytes each).

    pip install onnx==1.23.2 && python3 core/tests/data/make_tiny_models.py

tiny_piper.onnx       inputs input i64[1,N], input_lengths i64[1], scales f32[3]
tiny_piper_sid.onnx   the same plus sid i64[1]
not_piper.onnx        an Identity graph with other inputs
Output "output" f32[1,1,1,N]: float(input) * scales[1] (+ sid * 1000 for the speaker model), so a test can read
back the ids, the length scale and the speaker id it passed.
tiny_tone_sid.onnx    Piper's inputs with sid; output f32[1,1,1,256*N]: a 16 kHz tone of 110 * (1 + sid) Hz, so four
                      "speakers" sound different to the speaker encoder (the nearest-speaker search's plumbing test)
"""
from pathlib import Path

import onnx
from onnx import TensorProto, helper

HERE = Path(__file__).parent


def build(with_sid: bool) -> onnx.ModelProto:
    inputs = [
        helper.make_tensor_value_info("input", TensorProto.INT64, [1, "N"]),
        helper.make_tensor_value_info("input_lengths", TensorProto.INT64, [1]),
        helper.make_tensor_value_info("scales", TensorProto.FLOAT, [3]),
    ]
    nodes = [
        helper.make_node("Cast", ["input"], ["ids_f"], to=TensorProto.FLOAT),
        helper.make_node("Constant", [], ["one"], value=helper.make_tensor("one", TensorProto.INT64, [1], [1])),
        helper.make_node("Constant", [], ["two"], value=helper.make_tensor("two", TensorProto.INT64, [1], [2])),
        helper.make_node("Constant", [], ["zero"], value=helper.make_tensor("zero", TensorProto.INT64, [1], [0])),
        helper.make_node("Slice", ["scales", "one", "two", "zero"], ["length_scale"]),
        helper.make_node("Mul", ["ids_f", "length_scale"], ["scaled"]),
    ]
    last = "scaled"
    if with_sid:
        inputs.append(helper.make_tensor_value_info("sid", TensorProto.INT64, [1]))
        nodes += [
            helper.make_node("Cast", ["sid"], ["sid_f"], to=TensorProto.FLOAT),
            helper.make_node("Constant", [], ["k"], value=helper.make_tensor("k", TensorProto.FLOAT, [1], [1000.0])),
            helper.make_node("Mul", ["sid_f", "k"], ["sid_k"]),
            helper.make_node("Add", ["scaled", "sid_k"], ["with_sid"]),
        ]
        last = "with_sid"
    nodes.append(
        helper.make_node("Constant", [], ["axes"], value=helper.make_tensor("axes", TensorProto.INT64, [2], [1, 2]))
    )
    nodes.append(helper.make_node("Unsqueeze", [last, "axes"], ["output"]))
    graph = helper.make_graph(
        nodes,
        "tiny_piper",
        inputs,
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 1, 1, "N"])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def build_other() -> onnx.ModelProto:
    """A graph with the wrong inputs, for the "not a Piper model" error."""
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "not_piper",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model


def constant(name: str, kind: int, values: list, dims: list) -> onnx.NodeProto:
    return helper.make_node("Constant", [], [name], value=helper.make_tensor(name, kind, dims, values))


def build_tone() -> onnx.ModelProto:
    """A four-speaker "voice" whose speakers are tones an octave and more apart."""
    inputs = [
        helper.make_tensor_value_info("input", TensorProto.INT64, [1, "N"]),
        helper.make_tensor_value_info("input_lengths", TensorProto.INT64, [1]),
        helper.make_tensor_value_info("scales", TensorProto.FLOAT, [3]),
        helper.make_tensor_value_info("sid", TensorProto.INT64, [1]),
    ]
    nodes = [
        helper.make_node("Shape", ["input"], ["shape"]),
        constant("start", TensorProto.INT64, [1], [1]),
        constant("end", TensorProto.INT64, [2], [1]),
        helper.make_node("Slice", ["shape", "start", "end"], ["n_1"]),
        constant("hop", TensorProto.INT64, [256], [1]),
        helper.make_node("Mul", ["n_1", "hop"], ["t_len_1"]),
        helper.make_node("Cast", ["t_len_1"], ["t_len_f1"], to=TensorProto.FLOAT),
        helper.make_node("Squeeze", ["t_len_f1"], ["t_len_f"]),
        constant("zero_f", TensorProto.FLOAT, [0.0], []),
        constant("one_f", TensorProto.FLOAT, [1.0], []),
        helper.make_node("Range", ["zero_f", "t_len_f", "one_f"], ["t"]),
        helper.make_node("Cast", ["sid"], ["sid_f"], to=TensorProto.FLOAT),
        helper.make_node("Add", ["sid_f", "one_f"], ["sid_1"]),
        constant("w0", TensorProto.FLOAT, [2.0 * 3.141592653589793 * 110.0 / 16000.0], []),
        helper.make_node("Mul", ["sid_1", "w0"], ["w"]),
        helper.make_node("Mul", ["t", "w"], ["phase"]),
        helper.make_node("Sin", ["phase"], ["tone"]),
        constant("half", TensorProto.FLOAT, [0.5], []),
        helper.make_node("Mul", ["tone", "half"], ["quiet"]),
        constant("shape4", TensorProto.INT64, [1, 1, 1, -1], [4]),
        helper.make_node("Reshape", ["quiet", "shape4"], ["output"]),
    ]
    graph = helper.make_graph(
        nodes, "tiny_tone_sid", inputs, [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 1, 1, "T"])]
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


onnx.save(build_other(), HERE / "not_piper.onnx")
onnx.save(build_tone(), HERE / "tiny_tone_sid.onnx")
print("tiny_tone_sid.onnx", (HERE / "tiny_tone_sid.onnx").stat().st_size, "bytes")
for name, sid in [("tiny_piper.onnx", False), ("tiny_piper_sid.onnx", True)]:
    onnx.save(build(sid), HERE / name)
    print(name, (HERE / name).stat().st_size, "bytes")
