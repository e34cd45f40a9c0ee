"""cnnlib.data: locating, verifying, splitting and loading images."""

from __future__ import annotations

import pytest

from cnnlib import data
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


def test_duplicate_within_a_class_counts_once(dataset):
    (dataset / "alpha" / "image_0050.jpg").write_bytes((dataset / "alpha" / "image_0003.jpg").read_bytes())
    with pytest.warns(UserWarning, match="1 image\\(s\\) duplicate another"):
        manifest = data.make_split(dataset, CLASSES, SIZES, seed=2)
    data.check_disjoint(manifest)
    assert "alpha/image_0050.jpg" not in set(manifest["path"])


def test_symlink_loop_is_ignored_and_listed(dataset):
    (dataset / "alpha" / "loop").symlink_to(dataset / "alpha" / "loop")
    (dataset / "beta" / "up.jpg").symlink_to(dataset / "beta" / "up.jpg")  # a dangling self-link named .jpg
    with pytest.warns(UserWarning, match="Ignored 2 non-image entries"):
        listed = data.list_images(dataset, CLASSES)
    assert len(listed) == 24


def test_read_only_dataset_still_splits(dataset):
    before = tree_digest(dataset)
    for path in [dataset, *dataset.rglob("*")]:
        path.chmod(0o555 if path.is_dir() else 0o444)
    try:
        manifest = data.make_split(dataset, CLASSES, SIZES, seed=1)
        assert len(manifest) == 21
    finally:
        for path in [dataset, *dataset.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
    assert tree_digest(dataset) == before


def test_exclude_leaves_paths_out(dataset):
    manifest = data.make_split(dataset, CLASSES, SIZES, seed=1, exclude=["alpha/image_0001.jpg"])
    assert "alpha/image_0001.jpg" not in set(manifest["path"])
