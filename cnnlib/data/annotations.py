"""Caltech-101's object outlines as evidence boxes, for the localisation benchmark on the reference networks.

The official archive ships ``Annotations.tar`` beside the images: ``Annotations/<folder>/annotation_XXXX.mat`` for
``101_ObjectCategories/<class>/image_XXXX.jpg``, each a MATLAB file with ``box_coord`` = [top, bottom, left, right]
(1-based pixels of the original image, as Caltech's ``show_annotation.m`` draws it) and ``obj_contour`` (the outline,
relative to the box). Four folders are named differently from their image folders (``ANNOTATION_FOLDERS``).
The images here are resized to a square (``images.load_image``: the whole image, no crop), so a box is scaled by
the same factors. The setting ``CNNLIB_ANNOTATIONS_DIR`` points at the ``Annotations`` folder; without it (the
shared images here have none) notebook 07 says so and scores the synthetic benchmark only.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

ANNOTATION_FOLDERS = {  # image folder -> annotation folder, where they differ
    "Faces": "Faces_2",
    "Faces_easy": "Faces_3",
    "Motorbikes": "Motorbikes_16",
    "airplanes": "Airplanes_Side_2",
}


class AnnotationError(ValueError):
    """An annotation file that is missing, unreadable or without a usable ``box_coord``."""


def annotation_file(annotations_root: Path, image_path: Path) -> Path:
    """``Annotations/<folder>/annotation_XXXX.mat`` for ``.../<class>/image_XXXX.jpg``."""
    image_path = Path(image_path)
    match = re.fullmatch(r"image_(\d+)", image_path.stem)
    if match is None:
        raise AnnotationError(f"{image_path} is not named image_XXXX.jpg, so it has no Caltech-101 annotation.")
    folder = ANNOTATION_FOLDERS.get(image_path.parent.name, image_path.parent.name)
    return Path(annotations_root) / folder / f"annotation_{match.group(1)}.mat"


def evidence_box(annotation: Path, original_size: tuple[int, int], size: int) -> tuple[int, int, int, int]:
    """The annotated box on the resized (size x size) image: (top, left, bottom, right), half-open, clipped.

    Args:
        annotation: an ``annotation_XXXX.mat`` file.
        original_size: (width, height) of the original image in pixels.
        size: the side of the square the image is resized to.

    Raises:
        AnnotationError: the file is missing, not a MATLAB file, or has no 4-number ``box_coord``.
    """
    from scipy.io import loadmat  # SciPy comes with scikit-learn
    from scipy.io.matlab import MatReadError

    if not Path(annotation).is_file():
        raise AnnotationError(
            f"No annotation file {annotation}: is CNNLIB_ANNOTATIONS_DIR the official Annotations "
            "folder (from Annotations.tar)?"
        )
    try:
        coords = np.asarray(loadmat(annotation).get("box_coord"), float).ravel()
    except (ValueError, TypeError, OSError, MatReadError) as error:
        raise AnnotationError(f"{annotation} is not a readable MATLAB annotation file ({error}).") from error
    if coords.shape != (4,):
        raise AnnotationError(f"{annotation} has no box_coord of 4 numbers [top, bottom, left, right].")
    top, bottom, left, right = coords
    width, height = original_size
    sy, sx = size / height, size / width
    box = (
        int(np.floor((top - 1) * sy)),
        int(np.floor((left - 1) * sx)),
        int(np.ceil(bottom * sy)),
        int(np.ceil(right * sx)),
    )
    return tuple(int(v) for v in np.clip(box, 0, size))


def evidence_boxes(annotations_root: Path, image_paths: Sequence[Path], size: int) -> tuple[np.ndarray, list[int]]:
    """Boxes of every image that has an annotation: ((M, 4) int boxes on the resized image, their indices).

    Images without an annotation file are left out (their indices are not returned); a file that exists but cannot
    be read is an ``AnnotationError`` naming it.
    """
    boxes, kept = [], []
    for i, path in enumerate(image_paths):
        annotation = annotation_file(annotations_root, path)
        if not annotation.is_file():
            continue
        with Image.open(path) as image:
            boxes.append(evidence_box(annotation, image.size, size))
        kept.append(i)
    return np.array(boxes, int).reshape(-1, 4), kept
