"""Everything kept on disk: atomic writes and locks (``files``), the names of every output (``artifacts``),
``results/*.json`` with provenance (``results``) and the memo of computed results (``memo``).

Below everything else in the data flow: it imports only ``cnnlib.config`` and ``cnnlib.arithmetic``.
"""
