"""Run by test_distribute.py in a fresh process: train a tiny model on 1 device or under MirroredStrategy
over 2 logical CPU devices (they must be configured before TensorFlow starts), print its weights' sums."""

from __future__ import annotations

import json
import sys

import tensorflow as tf

mode = sys.argv[1]
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras  # noqa: E402
import numpy as np  # noqa: E402

from cnnlib.models import distribute, training  # noqa: E402

devices = [d.name for d in tf.config.list_logical_devices("CPU")]
active = distribute.strategy(devices if mode == "mirrored" else None)
rng = np.random.default_rng(0)
x = rng.normal(size=(64, 8, 8, 3)).astype("float32")
y = (x.mean(axis=(1, 2, 3)) > 0).astype("int32")
training.set_seed(1)
with active.scope():
    model = keras.Sequential(
        [
            keras.Input((8, 8, 3)),
            keras.layers.Conv2D(4, 3, activation="relu"),
            keras.layers.Flatten(),
            keras.layers.Dense(2, activation="softmax"),
        ]
    )
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="sparse_categorical_crossentropy")
model.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0)
print(
    json.dumps(
        {
            "strategy": distribute.describe(active),
            "devices": len(devices),
            "weights": [np.asarray(w).ravel().tolist() for w in model.get_weights()],
        }
    )
)
