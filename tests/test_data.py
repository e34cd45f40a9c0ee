"""cnnlib.data: locating, verifying, splitting and loading images."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from cnnlib import config, data
from conftest import make_dataset, tree_digest

CLASSES = ("alpha", "beta", "gamma")
SIZES = {"train": 4, "val": 1, "test": 2}


def test_find_dataset_prefers_env_and_accepts_object_categories_folder(tmp_path):
    official = make_dataset(tmp_path / "official" / "101_ObjectCategories", CLASSES, per_class=1)
    raw = make_dataset(tmp_path / "raw", CLASSES, per_class=1)
    env = {"CALTECH101_DIR": str(tmp_path / "official")}
    assert data.find_dataset(CLASSES, env=env, raw_dir=raw) == official
    assert data.find_dataset(CLASSES, env={}, raw_dir=raw) == raw
    assert data.find_dataset(CLASSES, env={}, raw_dir=tmp_path / "nothing") is None


def test_find_dataset_names_missing_class_folder(tmp_path):
    make_dataset(tmp_path / "d", ("alpha", "beta"), per_class=1)
    with pytest.raises(data.DatasetError, match=r"lacks the class folder\(s\) \['gamma'\]"):
        data.find_dataset(CLASSES, env={"CALTECH101_DIR": str(tmp_path / "d")})
    with pytest.raises(data.DatasetError, match="is not a folder"):
        data.find_dataset(CLASSES, env={"CALTECH101_DIR": str(tmp_path / "missing")})


def test_split_is_stratified_disjoint_and_reproducible(dataset, tmp_path):
    before = tree_digest(dataset)
    first = data.make_split(dataset, CLASSES, SIZES, seed=7)
    again = data.make_split(dataset, CLASSES, SIZES, seed=7)
    other = data.make_split(dataset, CLASSES, SIZES, seed=8)
    counts = data.split_counts(first)
    assert counts.loc["alpha"].tolist() == [4, 1, 2, 7]
    assert counts.loc["total"].tolist() == [12, 3, 6, 21]
    assert first.groupby("path")["split"].nunique().max() == 1
    assert first.groupby("sha256")["split"].nunique().max() == 1
    a = data.write_manifest(first, tmp_path / "a.csv").read_bytes()
    b = data.write_manifest(again, tmp_path / "b.csv").read_bytes()
    assert a == b
    assert not first.equals(other)
    assert tree_digest(dataset) == before  # the user's folder is never modified


def test_split_leaves_out_duplicate_content(dataset):
    (dataset / "beta" / "image_0099.jpg").write_bytes((dataset / "alpha" / "image_0001.jpg").read_bytes())
    with pytest.warns(UserWarning, match="duplicate another by content"):
        manifest = data.make_split(dataset, CLASSES, SIZES, seed=1)
    assert "beta/image_0099.jpg" not in set(manifest["path"])


def test_check_disjoint_detects_leak(dataset):
    manifest = data.make_split(dataset, CLASSES, SIZES, seed=1)
    leaked = manifest.copy()
    leaked.loc[leaked.index[-1], "sha256"] = leaked.loc[0, "sha256"]  # a test image equal to a train image
    with pytest.raises(data.DatasetError, match="Split leakage"):
        data.check_disjoint(leaked)


def test_too_few_images_gives_counts(tmp_path):
    root = make_dataset(tmp_path / "d", CLASSES, per_class=5)
    with pytest.raises(data.DatasetError, match=r"'alpha' .* has 5 distinct images; the split needs 7"):
        data.make_split(root, CLASSES, SIZES)


def test_unexpected_files_are_ignored_and_listed(dataset):
    (dataset / "alpha" / "notes.txt").write_text("hello")
    (dataset / "alpha" / "subfolder").mkdir()
    with pytest.warns(UserWarning, match="Ignored 2 non-image entries"):
        listed = data.list_images(dataset, CLASSES)
    assert len(listed) == 24


def test_load_image_converts_modes_and_honours_exif(tmp_path):
    gray = tmp_path / "gray.jpg"
    Image.fromarray(np.full((30, 60), 128, np.uint8), "L").save(gray)
    rgba = tmp_path / "rgba.png"
    Image.fromarray(np.zeros((20, 20, 4), np.uint8), "RGBA").save(rgba)  # fully transparent
    out = data.load_image(gray, 32)
    assert out.shape == (32, 32, 3) and out.dtype == np.uint8
    assert np.all(np.abs(out.astype(int) - 128) <= 2)
    assert np.all(data.load_image(rgba, 16) == 255)  # transparent -> white

    # A 40 (wide) x 20 (tall) image with a red left half, stored with EXIF "rotate 90 CW" (6).
    pixels = np.zeros((20, 40, 3), np.uint8)
    pixels[:, :20, 0] = 255
    exif = Image.Exif()
    exif[0x0112] = 6
    rotated = tmp_path / "rotated.jpg"
    Image.fromarray(pixels).save(rotated, exif=exif, quality=95)
    loaded = data.load_image(rotated, 40)
    assert loaded[:20, :, 0].mean() > 200 and loaded[20:, :, 0].mean() < 50  # red is now on top


def test_unreadable_image_error_names_the_file(dataset):
    bad = dataset / "alpha" / "image_0002.jpg"
    bad.write_bytes(b"this is not a jpeg")
    with pytest.raises(data.DatasetError, match="Cannot read image .*image_0002.jpg"):
        data.load_image(bad)


def test_load_split_shapes_labels_and_cache(dataset):
    manifest = data.make_split(dataset, CLASSES, SIZES, seed=3)
    arrays = data.load_split(manifest, dataset, CLASSES, size=48)
    x, y = arrays["train"]
    assert x.shape == (12, 48, 48, 3) and x.dtype == np.uint8
    assert sorted(np.bincount(y).tolist()) == [4, 4, 4]
    cached = data.load_split(manifest, dataset, CLASSES, size=48)
    assert all(np.array_equal(arrays[s][0], cached[s][0]) for s in arrays)
    (cache_file,) = config.cache_dir().glob("images_*.npz")
    cache_file.write_bytes(cache_file.read_bytes()[:64])  # truncated: rebuilt, not trusted
    rebuilt = data.load_split(manifest, dataset, CLASSES, size=48)
    assert all(np.array_equal(arrays[s][0], rebuilt[s][0]) for s in arrays)


def test_verify_checksums_reports_altered_and_missing(dataset, tmp_path):
    sums = tmp_path / "SUMS"
    lines = [f"{data.file_sha256(p)}  {p.relative_to(dataset).as_posix()}" for p in sorted(dataset.rglob("*.jpg"))]
    sums.write_text("\n".join(lines) + "\n")
    assert data.verify_checksums(dataset, CLASSES, sums) == 24
    (dataset / "beta" / "image_0003.jpg").write_bytes(b"changed")
    (dataset / "gamma" / "image_0004.jpg").unlink()
    with pytest.raises(data.DatasetError, match="2 image\\(s\\)") as info:
        data.verify_checksums(dataset, CLASSES, sums)
    assert "beta/image_0003.jpg" in str(info.value) and "gamma/image_0004.jpg" in str(info.value)


def test_read_manifest_missing_names_notebook(tmp_path):
    with pytest.raises(data.DatasetError, match="01_data_split"):
        data.read_manifest(tmp_path / "nope.csv")


def test_atomic_write_leaves_no_temporary_file(tmp_path):
    target = tmp_path / "out" / "file.bin"
    data.atomic_write_bytes(target, io.BytesIO(b"abc").getvalue())
    assert target.read_bytes() == b"abc"
    assert [p.name for p in target.parent.iterdir()] == ["file.bin"]
