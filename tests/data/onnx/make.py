"""Writes the ONNX fixtures of tests/onnx.rs with the onnx package itself, and beside each
model the classifier matrix [classes, features] as .npy, which aldfit must read from it.

    python tests/data/onnx/make.py      # onnx 1.23 (pip install onnx), numpy 2.x

Values are small integers over 64, exact in f16 and bf16.
"""
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
CLASSES, FEATURES = 5, 8


def matrix(rows, cols, seed):
    i = np.arange(rows * cols, dtype=np.int64) + seed
    return (((i * 37) % 61) - 30).astype(np.float32).reshape(rows, cols) / 64


def model(nodes, inits, name):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, FEATURES])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, CLASSES])
    graph = helper.make_graph(nodes, name, [x], [y], initializer=inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(m)
    return m


def main():
    w = matrix(CLASSES, FEATURES, 0)
    b = matrix(1, CLASSES, 1)[0]
    np.save(os.path.join(HERE, "head.npy"), w)

    # A torchvision-style classifier: Flatten, Gemm with transB (weight [classes, features]),
    # Softmax; an earlier Gemm (a hidden layer) that is not the head.
    hidden = numpy_helper.from_array(matrix(FEATURES, FEATURES, 3), "hidden.weight")
    m = model(
        [
            helper.make_node("Gemm", ["x", "hidden.weight"], ["h"], transB=1),
            helper.make_node("Relu", ["h"], ["r"]),
            helper.make_node("Flatten", ["r"], ["f"]),
            helper.make_node("Gemm", ["f", "fc.weight", "fc.bias"], ["logits"], transB=1),
            helper.make_node("Softmax", ["logits"], ["y"]),
        ],
        [hidden, numpy_helper.from_array(w, "fc.weight"), numpy_helper.from_array(b, "fc.bias")],
        "gemm",
    )
    onnx.save(m, os.path.join(HERE, "gemm.onnx"))

    # PaddleOCR's head: MatMul on a [features, classes] constant, then Add of a bias.
    m = model(
        [
            helper.make_node("MatMul", ["x", "linear.w"], ["mm"]),
            helper.make_node("Add", ["mm", "linear.b"], ["y"]),
        ],
        [numpy_helper.from_array(np.ascontiguousarray(w.T), "linear.w"), numpy_helper.from_array(b, "linear.b")],
        "matmul",
    )
    onnx.save(m, os.path.join(HERE, "matmul.onnx"))

    # The weight in typed fields, not raw_data: float_data, and f16 / bf16 in int32_data; and in
    # a Constant node instead of an initializer.
    typed = helper.make_tensor("fc.weight", TensorProto.FLOAT, w.shape, w.flatten().tolist())
    half = helper.make_tensor("half.weight", TensorProto.FLOAT16, w.shape, w.astype(np.float16).flatten().tolist())
    bf16 = helper.make_tensor("bf16.weight", TensorProto.BFLOAT16, w.shape, w.flatten().tolist())
    const = helper.make_node("Constant", [], ["fc.weight"], value=typed)
    m = model(
        [const, helper.make_node("Gemm", ["x", "fc.weight"], ["y"], transB=1)],
        [half, bf16],
        "typed",
    )
    onnx.save(m, os.path.join(HERE, "typed.onnx"))

    # External data: the weights in a file beside the model.
    m = model(
        [helper.make_node("Gemm", ["x", "fc.weight", "fc.bias"], ["y"], transB=1)],
        [numpy_helper.from_array(w, "fc.weight"), numpy_helper.from_array(b, "fc.bias")],
        "external",
    )
    onnx.save_model(m, os.path.join(HERE, "external.onnx"), save_as_external_data=True,
                    all_tensors_to_one_file=True, location="external.weights", size_threshold=0)

    for f in ["gemm.onnx", "matmul.onnx", "typed.onnx", "external.onnx"]:
        onnx.checker.check_model(os.path.join(HERE, f))
    print("onnx", onnx.__version__, "numpy", np.__version__)


if __name__ == "__main__":
    main()
