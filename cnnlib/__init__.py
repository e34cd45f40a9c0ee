"""cnnlib: the thin helper package behind the notebooks.

Data flows one way: images -> split manifest -> uint8 arrays -> trained models
-> numbers and arrays -> figures / results JSON -> report. See the README.
"""

import os as _os

# Quiet TensorFlow's C++ log (CPU-feature notes, "no CUDA", a harmless tf.data NodeDef note that
# TF 2.21 logs at ERROR level) before anything imports it. Real failures still raise in Python.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

__version__ = "0.1.0"
