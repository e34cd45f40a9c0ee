"""data.markers: seeded images whose evidence box holds the class's marker and nothing else of it."""

from __future__ import annotations

import numpy as np
import pytest

from cnnlib.data import markers


def test_same_seed_same_bytes_other_seed_other_images():
    a, b = markers.marker_images(6, seed=3, size=96), markers.marker_images(6, seed=3, size=96)
    assert a.images.tobytes() == b.images.tobytes() and np.array_equal(a.boxes, b.boxes)
    assert not np.array_equal(markers.marker_images(6, seed=4, size=96).boxes, a.boxes)


def test_the_box_holds_the_drawn_marker_and_the_distractor_lies_outside():
    data = markers.marker_images(9, seed=0, size=96)
    assert data.images.dtype == np.float32 and data.images.min() >= 0 and data.images.max() <= 255
    np.testing.assert_array_equal(np.bincount(data.labels), [3, 3, 3])  # balanced
    yellow = np.all(data.images == np.array([235, 235, 60], np.float32), axis=-1)  # marker and distractor colour
    for image_yellow, label, (top, left, bottom, right) in zip(yellow, data.labels, data.boxes):
        assert (bottom - top, right - left) == (markers.MARKER_SIDE, markers.MARKER_SIDE)
        np.testing.assert_array_equal(image_yellow[top:bottom, left:right], markers.marker_mask(label))
        outside = image_yellow.copy()
        outside[top:bottom, left:right] = False
        assert 100 < outside.sum() < markers.MARKER_SIDE**2  # the distractor disc, away from the marker


def test_markers_differ_by_shape_only():
    masks = [markers.marker_mask(k) for k in range(len(markers.MARKERS))]
    assert len({m.tobytes() for m in masks}) == len(masks)
    with pytest.raises(ValueError, match="not one of"):
        markers.marker_mask(len(markers.MARKERS))
    with pytest.raises(ValueError, match="size >= 48"):
        markers.marker_images(2, seed=0, size=40)
