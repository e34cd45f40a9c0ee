"""The command-line runners and the notebooks' shared setup: executing notebooks (``notebooks``), the setup every
notebook shares (``session``), the all-categories run (``scale``) and the comparison of regenerated outputs with the
committed ones (``reproduction``)."""
