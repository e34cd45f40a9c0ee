"""Checks on explanations rather than explanations: faithfulness (deletion / insertion, ``faithfulness``), the
randomisation sanity checks (``sanity``), and every method compared on the same images (``comparison``)."""
