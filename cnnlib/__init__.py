"""cnnlib: the thin helper package behind the notebooks.

Data flows one way: images -> split manifest -> uint8 arrays -> trained models
-> numbers and arrays -> figures / results JSON -> report. See the README.

Importing the package imports no TensorFlow: modules that need it get it from
``cnnlib._tensorflow`` (quietly, once).
"""

__version__ = "0.1.0"
