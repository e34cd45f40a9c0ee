"""cnnlib: the thin helper package behind the notebooks.

Data flows one way: images -> split manifest -> uint8 arrays -> trained models
-> numbers and arrays -> figures / results JSON -> report. See the README.

Importing the package imports no TensorFlow: modules that need it get it from
``cnnlib.backend`` (on TensorFlow quietly, once). It does pin the float32 arithmetic (``cnnlib.arithmetic``): the
settings go into ``os.environ`` here, before TensorFlow or NumPy's BLAS load, so this process and every
process it starts sum in the same order on any x86-64 CPU (``CNNLIB_ARITHMETIC=native`` opts out).
"""

from cnnlib import arithmetic as _arithmetic

_arithmetic.apply()

__version__ = "0.1.0"
