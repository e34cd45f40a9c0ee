"""The networks: declared (``architectures``), trained and cached (``training``, ``distribute``), VGG19 transfer
learning (``vgg19``, ``feature_cache``), compiled inference (``forward``), and the graph and receptive fields of
any Keras model (``model_graph``, ``receptive_field``)."""
