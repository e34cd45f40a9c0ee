"""TensorFlow and Keras, imported once with file descriptor 2 silenced.

TensorFlow 2.21 prints C++ notes at import time (oneDNN, "no CUDA drivers") before its log
settings apply; in notebooks they would land in checked cell outputs. Modules that need
TensorFlow import it from here (``from cnnlib._tensorflow import keras, tf``), so importing
``cnnlib`` itself, or a module that needs no TensorFlow (``cnnlib.report.pdf``, ``cnnlib.config``),
stays fast. Later log lines obey ``TF_CPP_MIN_LOG_LEVEL=3`` (set here unless the user set it).
A failing import still raises its Python exception unchanged.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
_saved = os.dup(2)
_devnull = os.open(os.devnull, os.O_WRONLY)
try:
    os.dup2(_devnull, 2)
    import tensorflow as tf
finally:
    os.dup2(_saved, 2)
    os.close(_saved)
    os.close(_devnull)

import keras  # noqa: E402 (after TensorFlow, which it uses as its backend)

# TensorFlow's Python-side warnings (e.g. "triggered tf.function retracing") depend on how many models a
# process has built so far, not on the results: keep them out of notebook outputs.
tf.get_logger().setLevel("ERROR")

__all__ = ["keras", "tf"]
