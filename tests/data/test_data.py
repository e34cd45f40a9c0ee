"""cnnlib.data.dataset: locating, verifying, splitting and loading images."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
from conftest import make_dataset, tree_digest, write_checksums
from PIL import Image

from cnnlib import config
from cnnlib.data import dataset, images, locate

CLASSES = ("alpha", "beta", "gamma")
SIZES = {"train": 4, "val": 1, "test": 2}


def test_find_dataset_prefers_env_and_accepts_object_categories_folder(tmp_path):
    official = make_dataset(tmp_path / "official" / "101_ObjectCategories", CLASSES, per_class=1)
    raw = make_dataset(tmp_path / "raw", CLASSES, per_class=1)
    env = {"CALTECH101_DIR": str(tmp_path / "official")}
    assert locate.find_dataset(CLASSES, env=env, raw_dir=raw) == official
    assert locate.find_dataset(CLASSES, env={}, raw_dir=raw) == raw
    assert locate.find_dataset(CLASSES, env={}, raw_dir=tmp_path / "nothing") is None


def test_find_dataset_names_missing_class_folder(tmp_path):
    make_dataset(tmp_path / "d", ("alpha", "beta"), per_class=1)
    with pytest.raises(dataset.DatasetError, match=r"lacks the class folder\(s\) \['gamma'\]"):
        locate.find_dataset(CLASSES, env={"CALTECH101_DIR": str(tmp_path / "d")})
    with pytest.raises(dataset.DatasetError, match="is not a folder"):
        locate.find_dataset(CLASSES, env={"CALTECH101_DIR": str(tmp_path / "missing")})


def test_split_is_stratified_disjoint_and_reproducible(image_folder, tmp_path):
    before = tree_digest(image_folder)
    first = dataset.make_split(image_folder, CLASSES, SIZES, seed=7)
    again = dataset.make_split(image_folder, CLASSES, SIZES, seed=7)
    other = dataset.make_split(image_folder, CLASSES, SIZES, seed=8)
    counts = dataset.split_counts(first)
    assert counts.loc["alpha"].tolist() == [4, 1, 2, 7]
    assert counts.loc["total"].tolist() == [12, 3, 6, 21]
    assert first.groupby("path")["split"].nunique().max() == 1
    assert first.groupby("sha256")["split"].nunique().max() == 1
    a = dataset.write_manifest(first, tmp_path / "a.csv").read_bytes()
    b = dataset.write_manifest(again, tmp_path / "b.csv").read_bytes()
    assert a == b
    assert not first.equals(other)
    assert tree_digest(image_folder) == before  # the user's folder is never modified


def test_cross_class_duplicate_is_reported_and_every_copy_left_out(image_folder):
    (image_folder / "beta" / "image_0099.jpg").write_bytes((image_folder / "alpha" / "image_0001.jpg").read_bytes())
    before = tree_digest(image_folder)
    with pytest.warns(UserWarning, match="same content as an image of another class") as record:
        manifest = dataset.make_split(image_folder, CLASSES, SIZES, seed=1)
    message = str(record[0].message)
    assert "alpha/image_0001.jpg" in message and "beta/image_0099.jpg" in message
    assert not {"alpha/image_0001.jpg", "beta/image_0099.jpg"} & set(manifest["path"])  # never relabelled
    assert tree_digest(image_folder) == before


def test_check_disjoint_detects_leak(image_folder):
    manifest = dataset.make_split(image_folder, CLASSES, SIZES, seed=1)
    leaked = manifest.copy()
    leaked.loc[leaked.index[-1], "sha256"] = leaked.loc[0, "sha256"]  # a test image equal to a train image
    with pytest.raises(dataset.DatasetError, match="Split leakage"):
        dataset.check_disjoint(leaked)


def test_too_few_images_gives_counts(tmp_path):
    root = make_dataset(tmp_path / "d", CLASSES, per_class=5)
    with pytest.raises(dataset.DatasetError, match=r"'alpha' .* has 5 distinct images; the split needs 7"):
        dataset.make_split(root, CLASSES, SIZES)


def test_unexpected_files_are_ignored_and_listed(image_folder):
    (image_folder / "alpha" / "notes.txt").write_text("hello")
    (image_folder / "alpha" / "subfolder").mkdir()
    with pytest.warns(UserWarning, match="Ignored 2 non-image entries"):
        listed = dataset.list_images(image_folder, CLASSES)
    assert len(listed) == 24


def test_verify_checksums_reports_altered_and_missing(image_folder, tmp_path):
    sums = write_checksums(image_folder, tmp_path / "SUMS")
    assert dataset.verify_checksums(image_folder, CLASSES, sums) == 24
    (image_folder / "beta" / "image_0003.jpg").write_bytes(b"changed")
    (image_folder / "gamma" / "image_0004.jpg").unlink()
    with pytest.raises(dataset.DatasetError, match="2 image\\(s\\)") as info:
        dataset.verify_checksums(image_folder, CLASSES, sums)
    assert "beta/image_0003.jpg" in str(info.value) and "gamma/image_0004.jpg" in str(info.value)


def test_read_manifest_missing_names_notebook(tmp_path):
    with pytest.raises(dataset.DatasetError, match="01_data_split"):
        dataset.read_manifest(tmp_path / "nope.csv")


def test_duplicate_within_a_class_counts_once(image_folder):
    (image_folder / "alpha" / "image_0050.jpg").write_bytes((image_folder / "alpha" / "image_0003.jpg").read_bytes())
    with pytest.warns(UserWarning, match="1 image\\(s\\) duplicate another"):
        manifest = dataset.make_split(image_folder, CLASSES, SIZES, seed=2)
    dataset.check_disjoint(manifest)
    assert "alpha/image_0050.jpg" not in set(manifest["path"])


def test_symlink_loop_is_ignored_and_listed(image_folder):
    (image_folder / "alpha" / "loop").symlink_to(image_folder / "alpha" / "loop")
    (image_folder / "beta" / "up.jpg").symlink_to(image_folder / "beta" / "up.jpg")  # a dangling self-link named .jpg
    with pytest.warns(UserWarning, match="Ignored 2 non-image entries"):
        listed = dataset.list_images(image_folder, CLASSES)
    assert len(listed) == 24


def test_read_only_dataset_still_splits(image_folder):
    before = tree_digest(image_folder)
    for path in [image_folder, *image_folder.rglob("*")]:
        path.chmod(0o555 if path.is_dir() else 0o444)
    try:
        manifest = dataset.make_split(image_folder, CLASSES, SIZES, seed=1)
        assert len(manifest) == 21
    finally:
        for path in [image_folder, *image_folder.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
    assert tree_digest(image_folder) == before


def test_exclude_leaves_paths_out(image_folder):
    manifest = dataset.make_split(image_folder, CLASSES, SIZES, seed=1, exclude=["alpha/image_0001.jpg"])
    assert "alpha/image_0001.jpg" not in set(manifest["path"])


# --------------------------------------------------------------------------- issue 12


def test_verify_checksums_lists_every_file_not_just_20(image_folder, tmp_path):
    sums = write_checksums(image_folder, tmp_path / "SUMS")
    for path in sorted(image_folder.rglob("*.jpg")):  # all 24 altered
        path.write_bytes(path.read_bytes() + b"x")
    before = tree_digest(image_folder)
    with pytest.raises(dataset.DatasetError, match="24 image\\(s\\)") as info:
        dataset.verify_checksums(image_folder, CLASSES, sums)
    assert all(p.relative_to(image_folder).as_posix() in str(info.value) for p in image_folder.rglob("*.jpg"))
    assert tree_digest(image_folder) == before


@pytest.mark.parametrize("line", ["not-a-digest alpha/image_0001.jpg", "0" * 64, "xyz  " + "a" * 60])
def test_malformed_checksum_line_names_file_and_line(tmp_path, line):
    sums = tmp_path / "SUMS"
    sums.write_text(f"{'a' * 64}  alpha/image_0001.jpg\n{line}\n")
    with pytest.raises(dataset.DatasetError, match=r"SUMS, line 2, is not"):
        dataset.read_checksums(sums)


def test_empty_or_unknown_settings_are_errors(tmp_path, monkeypatch):
    raw = make_dataset(tmp_path / "raw", CLASSES, per_class=1)
    monkeypatch.setenv("CALTECH101_DIR", "")
    with pytest.raises(config.SettingError, match="CALTECH101_DIR is set but empty"):
        locate.find_dataset(CLASSES, raw_dir=raw)  # not "unset": no silent data/raw/ or download
    monkeypatch.delenv("CALTECH101_DIR")
    assert locate.find_dataset(CLASSES, raw_dir=raw) == raw  # unset is still "not set"
    monkeypatch.setenv("CNNLIB_CACHE_DIR", " ")
    with pytest.raises(config.SettingError, match="CNNLIB_CACHE_DIR is set but empty"):
        config.cache_dir()
    for value, expected in (("1", True), ("yes", True), ("0", False), ("no", False)):
        monkeypatch.setenv(images.SKIP_ENV, value)
        assert images.skip_requested() is expected
    for value in ("maybe", ""):
        monkeypatch.setenv(images.SKIP_ENV, value)
        with pytest.raises(config.SettingError, match="CNNLIB_SKIP_BAD_IMAGES"):
            images.skip_requested()
    monkeypatch.setenv("CNNLIB_PROFILE", "")
    with pytest.raises(config.SettingError, match="CNNLIB_PROFILE is set but empty"):
        config.profile_name()
    monkeypatch.setenv("CNNLIB_PROFILE", "fast")
    with pytest.raises(
        config.SettingError,
        match=r"CNNLIB_PROFILE='fast' is not a valid value; use full or smoke, or unset it \(= full\)",
    ):
        config.profile_name()
    monkeypatch.delenv("CNNLIB_PROFILE")
    assert config.profile_name() == "full"
    monkeypatch.setenv(dataset.ALLOW_EXTRA_ENV, "perhaps")
    with pytest.raises(
        config.SettingError, match="CNNLIB_ALLOW_EXTRA_IMAGES='perhaps' is not a valid value; use one of 1"
    ):
        dataset.allow_extra_requested()


def _flipped_copy(source, target):
    Image.open(source).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(target, quality=90)


def test_image_that_is_not_official_stops_the_split_unless_allowed(image_folder, tmp_path):
    sums = write_checksums(image_folder, tmp_path / "SUMS")  # alpha, beta, gamma become reference classes
    _flipped_copy(image_folder / "alpha" / "image_0002.jpg", image_folder / "alpha" / "image_0085.jpg")
    before = tree_digest(image_folder)
    with pytest.raises(dataset.DatasetError, match="alpha/image_0085.jpg: not an official Caltech-101 file") as info:
        dataset.make_split(image_folder, CLASSES, SIZES, seed=1, checksums=sums)
    assert dataset.ALLOW_EXTRA_ENV + "=1" in str(info.value)
    reference = dataset.make_split(
        image_folder, CLASSES, SIZES, seed=1, checksums=sums, exclude=["alpha/image_0085.jpg"]
    )
    with pytest.warns(UserWarning, match="not official Caltech-101 files are used .*alpha/image_0085.jpg"):
        mine = dataset.make_split(image_folder, CLASSES, SIZES, seed=1, checksums=sums, allow_extra=True)
    assert "alpha/image_0085.jpg" not in set(reference["path"])
    assert len(mine) == len(reference)
    # a class the checksum list does not cover (the user's own) takes any image
    dataset.make_split(image_folder, CLASSES, SIZES, seed=1, checksums=None)
    assert tree_digest(image_folder) == before


def test_symlink_leaving_the_dataset_is_not_followed(image_folder, tmp_path):
    outside = tmp_path / "elsewhere.jpg"
    Image.fromarray(np.full((50, 50, 3), 7, np.uint8)).save(outside)
    (image_folder / "alpha" / "image_0090.jpg").symlink_to(outside)
    (image_folder / "alpha" / "image_0091.jpg").symlink_to(image_folder / "alpha" / "image_0001.jpg")  # stays inside
    before = tree_digest(image_folder)
    with pytest.warns(UserWarning, match="image_0090.jpg \\(symlink leaving the dataset folder, not followed\\)"):
        listed = dataset.list_images(image_folder, CLASSES)
    assert "alpha/image_0090.jpg" not in set(listed["path"]) and "alpha/image_0091.jpg" in set(listed["path"])
    assert tree_digest(image_folder) == before


def test_non_utf8_file_name_is_a_dataset_error_naming_it(image_folder):
    name = os.fsdecode(b"image_\xff\xfe.jpg")
    (image_folder / "beta" / name).write_bytes((image_folder / "beta" / "image_0001.jpg").read_bytes()[:-1] + b"\xd9")
    before = tree_digest(image_folder)
    for call in (
        lambda: dataset.make_split(image_folder, CLASSES, SIZES, seed=1),
        lambda: images.check_images(image_folder, CLASSES),
    ):
        with pytest.raises(dataset.DatasetError, match=r"not valid UTF-8:\n  .*beta/image_\\xff\\xfe\.jpg"):
            call()
    assert tree_digest(image_folder) == before


def test_ignored_entries_are_warned_about_once(image_folder):
    (image_folder / "gamma" / "README.txt").write_text("notes")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check = images.check_images(image_folder, CLASSES)
        dataset.make_split(image_folder, CLASSES, SIZES, seed=1, exclude=check.exclude)
    assert sum("Ignored 1 non-image entries" in str(w.message) for w in caught) == 1


def test_hand_edited_manifest_is_rejected(image_folder, tmp_path):
    manifest = dataset.make_split(image_folder, CLASSES, SIZES, seed=1)
    good = dataset.write_manifest(manifest, tmp_path / "good.csv")
    assert len(dataset.read_manifest(good, CLASSES, SIZES)) == 21
    lines = good.read_text().splitlines(keepends=True)
    train_row = next(line for line in lines if ",train," in line)
    edits = {
        "rows cut": lines[:-2],
        "train image copied into test": lines[:-1] + [train_row.replace(",train,", ",test,")],
        "path leaving the dataset": [lines[0], lines[1].replace("alpha/", "alpha/../../", 1), *lines[2:]],
        "bad digest": [lines[0], lines[1].rsplit(",", 1)[0] + ",abc\n", *lines[2:]],
        "empty cell": [lines[0], ",alpha,train," + "0" * 64 + "\n", *lines[2:]],
    }
    for edited in edits.values():
        path = tmp_path / "edited.csv"
        path.write_text("".join(edited))
        with pytest.raises(dataset.DatasetError, match="Split manifest .*edited.csv"):
            dataset.read_manifest(path, CLASSES, SIZES)
        with pytest.raises(dataset.DatasetError, match="edited.csv"):
            dataset.read_manifest(path)  # without sizes: still checked (equal counts, disjoint, format)


def test_unreadable_file_or_folder_is_a_dataset_error_naming_it(image_folder, monkeypatch):
    """Permission errors (simulated: the tests may run as root, who can read anything)."""
    before = tree_digest(image_folder)
    real_sha = dataset.file_sha256

    def denied(path):
        if path.name == "image_0003.jpg" and path.parent.name == "beta":
            raise PermissionError(13, "Permission denied", str(path))
        return real_sha(path)

    with (
        monkeypatch.context() as patch,
        pytest.raises(dataset.DatasetError, match="beta/image_0003.jpg: cannot be read: Permission denied"),
    ):
        patch.setattr(dataset, "file_sha256", denied)
        dataset.make_split(image_folder, CLASSES, SIZES, seed=1)
    real_iterdir = type(image_folder).iterdir

    def locked(self):
        if self.name == "gamma":
            raise PermissionError(13, "Permission denied", str(self))
        return real_iterdir(self)

    with (
        monkeypatch.context() as patch,
        pytest.raises(dataset.DatasetError, match="Cannot list the class folder .*gamma: Permission denied"),
    ):
        patch.setattr(type(image_folder), "iterdir", locked)
        dataset.list_images(image_folder, CLASSES)
    assert tree_digest(image_folder) == before


def test_all_classes_obey_the_named_list_rules(tmp_path):
    """``all`` on one class folder is refused (as a one-name list is); a folder with images only in sub-folders
    is named in a warning, never dropped silently."""
    one = make_dataset(tmp_path / "one", ("alpha",), per_class=2)
    with pytest.raises(
        config.SettingError, match=r"found 1 class folder .* \(alpha\); a classifier needs at least two"
    ):
        locate.resolve_classes("all", env={"CNNLIB_DATA_DIR": str(one)})
    mixed = make_dataset(tmp_path / "mixed", ("alpha", "beta"), per_class=2)
    make_dataset(mixed / "gamma", ("part1", "part2"), per_class=3)  # gamma's images only in sub-folders
    with pytest.warns(UserWarning, match=r"leaves out 1 folder\(s\) .*: gamma \(6 images in sub-folders\)"):
        assert locate.resolve_classes("all", env={"CNNLIB_DATA_DIR": str(mixed)}) == ("alpha", "beta")
