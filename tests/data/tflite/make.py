"""Writes the TFLite fixtures of tests/tflite.rs with TensorFlow's own converter, and beside them
the classifier matrix [classes, features] as .npy: the Dense kernel, transposed, as each model
stores it (f32; f16, which TFLite dequantises at run time; int8 per-channel weights).

    python tests/data/tflite/make.py      # tensorflow-cpu 2.x (pip install tensorflow-cpu)
"""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np
import tensorflow as tf

HERE = os.path.dirname(os.path.abspath(__file__))
CLASSES, FEATURES = 12, 128  # past the converter's 1024-value floor for quantising a weight


def matrix(rows, cols, seed):
    i = np.arange(rows * cols, dtype=np.int64) + seed
    return (((i * 37) % 61) - 30).astype(np.float32).reshape(rows, cols) / 64


def main():
    inputs = tf.keras.Input(shape=(FEATURES,))
    hidden = tf.keras.layers.Dense(FEATURES, activation="relu", name="hidden")(inputs)
    logits = tf.keras.layers.Dense(CLASSES, name="classifier")(hidden)
    out = tf.keras.layers.Softmax()(logits)
    model = tf.keras.Model(inputs, out)
    model.get_layer("hidden").set_weights([matrix(FEATURES, FEATURES, 3), np.zeros(FEATURES, np.float32)])
    kernel = matrix(FEATURES, CLASSES, 0)  # Keras stores [features, classes]
    model.get_layer("classifier").set_weights([kernel, matrix(1, CLASSES, 1)[0]])
    np.save(os.path.join(HERE, "head.npy"), np.ascontiguousarray(kernel.T))

    def convert(name, setup):
        c = tf.lite.TFLiteConverter.from_keras_model(model)
        setup(c)
        with open(os.path.join(HERE, name), "wb") as f:
            f.write(c.convert())

    convert("f32.tflite", lambda c: None)

    def f16(c):
        c.optimizations = [tf.lite.Optimize.DEFAULT]
        c.target_spec.supported_types = [tf.float16]

    convert("f16.tflite", f16)

    def int8(c):
        c.optimizations = [tf.lite.Optimize.DEFAULT]
        c._experimental_disable_per_channel = False

    convert("int8.tflite", int8)

    # What TFLite's interpreter computes with: its dequantised weights give the int8 model's
    # matrix (per-channel scale and zero point applied).
    interp = tf.lite.Interpreter(model_path=os.path.join(HERE, "int8.tflite"))
    interp.allocate_tensors()
    for d in interp.get_tensor_details():
        q = d["quantization_parameters"]
        if list(d["shape"]) == [CLASSES, FEATURES] and len(q["scales"]):
            w = interp.get_tensor(d["index"]).astype(np.float32)
            zp = q["zero_points"].reshape(-1, 1).astype(np.float32)
            s = q["scales"].reshape(-1, 1).astype(np.float32)
            np.save(os.path.join(HERE, "int8.npy"), ((w - zp) * s).astype(np.float32))
            print("int8 weight", d["name"], d["dtype"], "scales", len(q["scales"]))
    print("tensorflow", tf.__version__, "numpy", np.__version__)


if __name__ == "__main__":
    main()
