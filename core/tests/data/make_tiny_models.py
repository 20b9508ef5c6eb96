#!/usr/bin/env python3
"""Generate the tiny Piper-shaped ONNX graphs used by core's plumbing tests (a few hundred bytes each).

    pip install onnx==1.23.2 && python3 core/tests/data/make_tiny_models.py

tiny_piper.onnx       inputs input i64[1,N], input_lengths i64[1], scales f32[3]
tiny_piper_sid.onnx   the same plus sid i64[1]
not_piper.onnx        an Identity graph with other inputs
Output "output" f32[1,1,1,N]: float(input) * scales[1] (+ sid * 1000 for the speaker model), so a test can read
back the ids, the length scale and the speaker id it passed.
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


onnx.save(build_other(), HERE / "not_piper.onnx")
for name, sid in [("tiny_piper.onnx", False), ("tiny_piper_sid.onnx", True)]:
    onnx.save(build(sid), HERE / name)
    print(name, (HERE / name).stat().st_size, "bytes")
