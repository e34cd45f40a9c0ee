"""cnnlib: the thin helper package behind the notebooks.

Data flows one way: images -> split manifest -> uint8 arrays -> trained models
-> numbers and arrays -> figures / results JSON -> report. See the README.
"""

import os as _os


def _import_tensorflow_quietly() -> None:
    """Import TensorFlow once with file descriptor 2 silenced.

    TensorFlow 2.21 prints C++ notes at import time (oneDNN, "no CUDA drivers")
    before its log settings apply; in notebooks they would land in checked cell
    outputs. Later log lines obey TF_CPP_MIN_LOG_LEVEL=3 (also set here). A failing
    import still raises its Python exception unchanged.
    """
    _os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    saved = _os.dup(2)
    devnull = _os.open(_os.devnull, _os.O_WRONLY)
    try:
        _os.dup2(devnull, 2)
        import tensorflow  # noqa: F401
    finally:
        _os.dup2(saved, 2)
        _os.close(saved)
        _os.close(devnull)


_import_tensorflow_quietly()

__version__ = "0.1.0"
