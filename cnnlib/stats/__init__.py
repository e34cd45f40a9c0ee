"""Numbers about the networks: accuracies and confusion matrices (``evaluation``), inference on them
(``statistics``: intervals, McNemar with Holm; ``bootstrap``: paired and hierarchical bootstraps), and repeated
runs over seeds and splits (``experiments``)."""
