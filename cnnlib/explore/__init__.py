"""The interactive explorer: any Keras classifier, any image, every method, in a notebook.

``state`` holds the logic without widgets (controls -> a frame of arrays), ``render`` draws a frame into one
picture, ``registry`` adapts each interpretability method to the explorer's controls, and ``app`` wraps them in
ipywidgets::

    from cnnlib import explore
    explorer = explore.project_explorer()
"""

from cnnlib.explore.app import Explorer, project_catalogue, project_explorer

__all__ = ["Explorer", "project_catalogue", "project_explorer"]
