"""data.annotations: Caltech-101 outline files -> evidence boxes on the resized image (a small fixture of .mat
files written the way the official Annotations.tar holds them)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from scipy.io import savemat

from cnnlib import config
from cnnlib.data import annotations


def _fixture(tmp_path):
    images, notes = tmp_path / "101_ObjectCategories", tmp_path / "Annotations"
    for folder, note_folder in (("starfish", "starfish"), ("Faces", "Faces_2")):
        (images / folder).mkdir(parents=True)
        (notes / note_folder).mkdir(parents=True)
    Image.new("RGB", (300, 200)).save(images / "starfish" / "image_0001.jpg")
    Image.new("RGB", (300, 200)).save(images / "starfish" / "image_0002.jpg")  # no annotation
    Image.new("RGB", (100, 400)).save(images / "Faces" / "image_0007.jpg")
    # box_coord = [top, bottom, left, right], 1-based, as show_annotation.m reads it
    savemat(
        notes / "starfish" / "annotation_0001.mat",
        {"box_coord": np.array([[21, 120, 31, 180]]), "obj_contour": np.zeros((2, 5))},
    )
    savemat(notes / "Faces_2" / "annotation_0007.mat", {"box_coord": np.array([[1, 400, 1, 100]])})
    paths = [
        images / "starfish" / "image_0001.jpg",
        images / "starfish" / "image_0002.jpg",
        images / "Faces" / "image_0007.jpg",
    ]
    return notes, paths


def test_boxes_are_scaled_to_the_resized_image_and_missing_annotations_left_out(tmp_path):
    notes, paths = _fixture(tmp_path)
    boxes, kept = annotations.evidence_boxes(notes, paths, size=224)
    assert kept == [0, 2]
    # starfish: rows 20..119 of 200 -> x 1.12, columns 30..179 of 300 -> x 0.7467
    np.testing.assert_array_equal(boxes[0], [22, 22, 135, 135])
    np.testing.assert_array_equal(boxes[1], [0, 0, 224, 224])  # Faces -> Faces_2, the whole image


def test_unreadable_annotation_and_bad_setting_are_clear_errors(tmp_path, monkeypatch):
    notes, paths = _fixture(tmp_path)
    (notes / "starfish" / "annotation_0001.mat").write_bytes(b"not a MATLAB file")
    with pytest.raises(annotations.AnnotationError, match="annotation_0001.mat"):
        annotations.evidence_boxes(notes, paths, size=224)
    savemat(notes / "starfish" / "annotation_0001.mat", {"obj_contour": np.zeros((2, 5))})
    with pytest.raises(annotations.AnnotationError, match="no box_coord"):
        annotations.evidence_boxes(notes, paths, size=224)
    with pytest.raises(annotations.AnnotationError, match="image_XXXX"):
        annotations.annotation_file(notes, tmp_path / "photo.jpg")
    monkeypatch.setenv("CNNLIB_ANNOTATIONS_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(config.SettingError, match="not a folder"):
        config.annotations_dir()
    monkeypatch.setenv("CNNLIB_ANNOTATIONS_DIR", str(notes))
    assert config.annotations_dir() == notes


def test_the_benchmark_runs_on_annotated_caltech_images(tmp_path):
    import small_models

    from cnnlib.interpret.checks import localisation

    notes, paths = _fixture(tmp_path)
    model = small_models.project("arch1", seed=0, n_classes=2)
    x = np.random.default_rng(0).uniform(0, 255, (3, 224, 224, 3)).astype(np.float32)
    summary = localisation.caltech_scores(model, x, np.array([0, 0, 1]), paths, notes, n_boot=100)
    assert summary["annotated"] == 2 and summary["networks"] == 1 and summary["images"] == 2
    whole_image = summary["energy"]  # the Faces box is the whole image: that map's energy share is 1
    assert all(0 <= row["mean"] <= 1 for row in whole_image.values())
    assert localisation.caltech_scores(model, x[:2], np.array([0, 0]), paths[:2], notes) is None  # one annotated
