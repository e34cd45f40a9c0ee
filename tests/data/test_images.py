"""cnnlib.data.images: decoding odd files, the bad-image policy, the decoded-array cache; cnnlib.store.files."""

from __future__ import annotations

import errno
import io
import os
import time

import numpy as np
import pytest
from conftest import tree_digest, write_checksums
from PIL import Image

from cnnlib import config
from cnnlib.data import dataset, images
from cnnlib.store import files

CLASSES = ("alpha", "beta", "gamma")
SIZES = {"train": 4, "val": 1, "test": 2}


def _save(path, array, mode=None, **kwargs):
    Image.fromarray(array, mode).save(path, **kwargs) if mode else Image.fromarray(array).save(path, **kwargs)
    return path


def test_grayscale_alpha_and_exif(tmp_path):
    gray = _save(tmp_path / "gray.jpg", np.full((30, 60), 128, np.uint8))
    rgba = _save(tmp_path / "rgba.png", np.zeros((20, 20, 4), np.uint8))  # fully transparent
    out = images.load_image(gray, 32)
    assert out.shape == (32, 32, 3) and out.dtype == np.uint8
    assert np.all(np.abs(out.astype(int) - 128) <= 2)
    assert np.all(images.load_image(rgba, 16) == 255)  # transparent -> white

    # A 40 (wide) x 20 (tall) image with a red left half, stored with EXIF "rotate 90 CW" (6).
    pixels = np.zeros((20, 40, 3), np.uint8)
    pixels[:, :20, 0] = 255
    exif = Image.Exif()
    exif[0x0112] = 6
    rotated = _save(tmp_path / "rotated.jpg", pixels, exif=exif, quality=95)
    loaded = images.load_image(rotated, 40)
    assert loaded[:20, :, 0].mean() > 200 and loaded[20:, :, 0].mean() < 50  # red is now on top


def test_cmyk_16bit_palette_and_tiny_images(tmp_path):
    cmyk = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (50, 40), (0, 255, 255, 0)).save(cmyk)  # pure red in CMYK
    red = images.load_image(cmyk, 24)
    assert red[..., 0].mean() > 200 and red[..., 1].mean() < 60

    deep = tmp_path / "deep.png"
    Image.fromarray(np.full((20, 20), 40000, np.uint16)).save(deep)  # 16-bit grayscale
    assert images.load_image(deep, 8).shape == (8, 8, 3)

    palette = tmp_path / "palette.png"
    Image.new("P", (10, 10), 3).save(palette)
    assert images.load_image(palette, 8).shape == (8, 8, 3)

    tiny = _save(tmp_path / "tiny.jpg", np.full((10, 10, 3), 200, np.uint8))  # upscaled like any other
    assert images.load_image(tiny, 224).shape == (224, 224, 3)


def test_large_jpeg_is_decoded_at_reduced_scale(tmp_path):
    big = tmp_path / "big.jpg"
    Image.new("RGB", (8000, 6000), (10, 200, 30)).save(big, quality=50)
    with images._open_reduced(big, 224) as img:
        assert img.size == (1000, 750)  # the JPEG decoder's 1/8 scale, still >= 224
    assert images.load_image(big, 224)[..., 1].mean() > 190


@pytest.mark.parametrize("payload", [b"", b"this is not a jpeg", "truncated"])
def test_unreadable_images_name_the_file(tmp_path, payload):
    path = tmp_path / "image_0002.jpg"
    if payload == "truncated":
        buffer = io.BytesIO()
        Image.fromarray(np.random.default_rng(0).integers(0, 255, (200, 200, 3), dtype=np.uint8)).save(buffer, "JPEG")
        payload = buffer.getvalue()[: len(buffer.getvalue()) // 2]
    path.write_bytes(payload)
    with pytest.raises(dataset.DatasetError, match="Cannot read image .*image_0002.jpg"):
        images.load_image(path)


def test_bad_images_stop_the_run_with_every_file_listed_or_are_skipped(image_folder, monkeypatch):
    (image_folder / "alpha" / "image_0002.jpg").write_bytes(b"")
    (image_folder / "gamma" / "image_0005.jpg").write_bytes(b"not an image")
    before = tree_digest(image_folder)
    monkeypatch.delenv(images.SKIP_ENV, raising=False)
    with pytest.raises(dataset.DatasetError) as info:
        images.check_images(image_folder, CLASSES)
    message = str(info.value)
    assert "2 bad image(s)" in message and "alpha/image_0002.jpg" in message
    assert "gamma/image_0005.jpg" in message and "CNNLIB_SKIP_BAD_IMAGES=1" in message
    monkeypatch.setenv(images.SKIP_ENV, "1")
    with pytest.warns(UserWarning, match="Skipping 2 bad"):
        check = images.check_images(image_folder, CLASSES)
    assert check.exclude == ["alpha/image_0002.jpg", "gamma/image_0005.jpg"]
    manifest = dataset.make_split(image_folder, CLASSES, SIZES, exclude=check.exclude)
    images.load_split(manifest, image_folder, CLASSES, size=16)  # every manifest image decodes
    assert tree_digest(image_folder) == before  # nothing in the user's folder changed


def test_load_split_shapes_labels_and_cache(image_folder):
    manifest = dataset.make_split(image_folder, CLASSES, SIZES, seed=3)
    arrays = images.load_split(manifest, image_folder, CLASSES, size=48)
    x, y = arrays["train"]
    assert x.shape == (12, 48, 48, 3) and x.dtype == np.uint8
    assert sorted(np.bincount(y).tolist()) == [4, 4, 4]
    cached = images.load_split(manifest, image_folder, CLASSES, size=48)
    assert all(np.array_equal(arrays[s][0], cached[s][0]) for s in arrays)
    (cache_file,) = config.cache_dir().glob("images_*.npz")
    cache_file.write_bytes(cache_file.read_bytes()[:64])  # truncated: rebuilt, not trusted
    rebuilt = images.load_split(manifest, image_folder, CLASSES, size=48)
    assert all(np.array_equal(arrays[s][0], rebuilt[s][0]) for s in arrays)


def test_atomic_write_leaves_no_temporary_file_and_names_unwritable_folder(tmp_path):
    target = tmp_path / "out" / "file.bin"
    files.atomic_write_bytes(target, b"abc")
    assert target.read_bytes() == b"abc"
    assert [p.name for p in target.parent.iterdir()] == ["file.bin"]
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file where a folder should be")
    with pytest.raises(files.OutputNotWritable, match="Cannot write .*not_a_folder/results.json"):
        files.atomic_write_bytes(blocker / "results.json", b"{}")


# --------------------------------------------------------------------------- issue 12


def test_damaged_official_files_follow_the_one_bad_image_policy(image_folder, tmp_path):
    """Truncated, altered and missing official files: listed all together, or skipped and counted."""
    sums = write_checksums(image_folder, tmp_path / "SUMS")
    truncated = image_folder / "beta" / "image_0003.jpg"
    truncated.write_bytes(truncated.read_bytes()[:200])
    altered = image_folder / "alpha" / "image_0004.jpg"
    Image.open(altered).transpose(Image.Transpose.FLIP_TOP_BOTTOM).save(altered)  # readable, not official
    (image_folder / "gamma" / "image_0006.jpg").unlink()
    before = tree_digest(image_folder)
    with pytest.raises(dataset.DatasetError, match="3 bad image\\(s\\)") as info:
        images.check_images(image_folder, CLASSES, skip=False, checksums=sums)
    message = str(info.value)
    assert "alpha/image_0004.jpg: content differs from the official file" in message
    assert (
        "beta/image_0003.jpg: content differs" in message and "gamma/image_0006.jpg: official file missing" in message
    )
    with pytest.warns(UserWarning, match="Skipping 3 bad image"):
        check = images.check_images(image_folder, CLASSES, skip=True, checksums=sums)
    assert check.exclude == ["alpha/image_0004.jpg", "beta/image_0003.jpg", "gamma/image_0006.jpg"]
    assert check.verified == 21
    with pytest.raises(dataset.DatasetError, match="3 bad image"):  # the split never takes them unasked
        dataset.make_split(image_folder, CLASSES, SIZES, checksums=sums)
    manifest = dataset.make_split(image_folder, CLASSES, SIZES, checksums=sums, exclude=check.exclude)
    assert not set(check.exclude) & set(manifest["path"])
    assert tree_digest(image_folder) == before


def test_extra_image_in_a_reference_class_is_bad_unless_allowed(image_folder, tmp_path):
    sums = write_checksums(image_folder, tmp_path / "SUMS")
    Image.open(image_folder / "beta" / "image_0001.jpg").transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(
        image_folder / "beta" / "image_0085.jpg"
    )
    before = tree_digest(image_folder)
    with pytest.raises(dataset.DatasetError, match="beta/image_0085.jpg: not an official Caltech-101 file"):
        images.check_images(image_folder, CLASSES, skip=False, checksums=sums)
    allowed = images.check_images(image_folder, CLASSES, skip=False, checksums=sums, allow_extra=True)
    assert allowed.extra == ["beta/image_0085.jpg"] and allowed.skipped == [] and allowed.verified == 24
    assert tree_digest(image_folder) == before


def test_16bit_images_are_scaled_by_the_type_range_not_their_own_maximum(tmp_path):
    mid = tmp_path / "mid.png"
    Image.fromarray(np.full((20, 20), 40000, np.uint16)).save(mid)
    assert np.all(images.load_image(mid, 8) == round(40000 * 255 / 65535))  # 156, not 255
    dark = tmp_path / "dark.png"
    Image.fromarray(np.linspace(0, 1000, 400).reshape(20, 20).astype(np.uint16)).save(dark)
    assert images.load_image(dark, 8).max() <= 4  # a dark image stays dark (no contrast stretch)
    exact = tmp_path / "exact.png"
    Image.fromarray((np.arange(256, dtype=np.uint16) * 257).reshape(16, 16)).save(exact)
    assert np.array_equal(images.load_image(exact, 16)[..., 0], np.arange(256).reshape(16, 16))


def test_float_images_use_their_range_or_are_refused(tmp_path):
    grey = tmp_path / "grey.png"  # a float TIFF named .png: Pillow goes by content
    Image.fromarray(np.full((10, 10), 0.5, np.float32)).save(grey, format="TIFF")
    assert np.all(images.load_image(grey, 8) == 128)  # not black
    hdr = tmp_path / "hdr.png"
    Image.fromarray(np.full((10, 10), 300.0, np.float32)).save(hdr, format="TIFF")
    with pytest.raises(
        dataset.DatasetError, match="Cannot read image .*hdr.png: a floating-point image must hold values in 0..1"
    ):
        images.load_image(hdr, 8)
    wide = tmp_path / "wide.png"
    Image.fromarray(np.full((10, 10), 7, np.int32)).save(wide, format="TIFF")
    with pytest.raises(dataset.DatasetError, match="wide.png: a 32-bit integer TIFF image has no defined 8-bit scale"):
        images.load_image(wide, 8)


def test_decoding_memory_is_bounded_for_every_format(tmp_path, monkeypatch):
    assert 4000 * 4000 <= images.MAX_PIXELS < 12000 * 12000  # a 12000 x 12000 PNG (836 MiB to decode) is refused
    monkeypatch.setattr(images, "MAX_PIXELS", 300 * 300)  # the real bound (30 MP) scaled down: a fast test
    big_png = tmp_path / "big.png"
    Image.new("L", (400, 400), 9).save(big_png)  # as a 12000 x 12000 PNG is against 30 MP
    with pytest.raises(dataset.DatasetError, match="big.png: 400 x 400 pixels is more than the decoding limit"):
        images.load_image(big_png, 224)
    big_jpeg = tmp_path / "big.jpg"
    Image.new("RGB", (1200, 1200), (1, 2, 3)).save(big_jpeg)  # the JPEG decoder reduces it first: accepted
    assert images.load_image(big_jpeg, 100).shape == (100, 100, 3)


def test_load_split_verifies_each_image_against_the_manifest(image_folder):
    manifest = dataset.make_split(image_folder, CLASSES, SIZES, seed=3)
    victim = image_folder / manifest.loc[5, "path"]
    Image.open(victim).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(victim)  # altered after the split
    before = tree_digest(image_folder)
    with pytest.raises(
        dataset.DatasetError,
        match=rf"1 image\(s\) differ from the split manifest.*\n  .*{manifest.loc[5, 'path']}: SHA-256",
    ):
        images.load_split(manifest, image_folder, CLASSES, size=16)
    assert list(config.cache_dir().glob("images_*.npz")) == []  # nothing cached from altered files
    assert tree_digest(image_folder) == before


def test_load_split_handles_a_non_utf8_name(image_folder):
    manifest = dataset.make_split(image_folder, CLASSES, SIZES, seed=3)
    odd = os.fsdecode(b"image_\xff.jpg")
    old = image_folder / manifest.loc[0, "path"]
    os.link(old, old.parent / odd)
    manifest.loc[0, "path"] = f"{manifest.loc[0, 'class']}/{odd}"
    before = tree_digest(image_folder)
    arrays = images.load_split(manifest, image_folder, CLASSES, size=16)  # no UnicodeEncodeError
    assert arrays["train"][0].shape[0] == 12
    with pytest.raises(dataset.DatasetError, match=r"image_\\xff.jpg is not valid UTF-8"):
        dataset.write_manifest(manifest, image_folder.parent / "m.csv")
    assert tree_digest(image_folder) == before


def test_full_disk_is_output_not_writable_and_leaves_no_temporary(tmp_path, monkeypatch):
    def disk_full(*args):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files.os, "replace", disk_full)
    with pytest.raises(files.OutputNotWritable, match="Cannot write .*out/results.json: No space left on device"):
        files.atomic_write_bytes(tmp_path / "out" / "results.json", b"{}")
    assert list((tmp_path / "out").iterdir()) == []


def test_stale_temporaries_of_killed_runs_are_swept(tmp_path):
    folder = tmp_path / "cache"
    folder.mkdir()
    stale = [
        folder / ".images_ab.npz.x1y2z3.tmp",
        folder / ".arch1_cd.keras.q9w8e7.tmp.keras",
        folder / ".caltech-101.zip.k3j4h5.part",
    ]
    fresh, user = folder / ".images_ef.npz.a1b2c3.tmp", folder / "notes.tmp"
    for path in [*stale, fresh, user]:
        path.write_bytes(b"half")
    day_ago = time.time() - 86400
    for path in [*stale, user]:
        os.utime(path, (day_ago, day_ago))
    files.atomic_write_bytes(folder / "results.json", b"{}")  # the first write into a folder sweeps it
    assert sorted(p.name for p in folder.iterdir()) == sorted([fresh.name, user.name, "results.json"])


def test_decoded_cache_is_never_reused_for_another_split_size_or_classes(image_folder):
    before = tree_digest(image_folder)
    manifest = dataset.make_split(image_folder, CLASSES, SIZES, seed=3)
    images.load_split(manifest, image_folder, CLASSES, size=16)
    images.load_split(manifest, image_folder, CLASSES, size=24)  # other preprocessing
    images.load_split(
        dataset.make_split(image_folder, CLASSES, SIZES, seed=4), image_folder, CLASSES, size=16
    )  # other split
    images.load_split(manifest, image_folder, CLASSES[::-1], size=16)  # other label order
    assert len(list(config.cache_dir().glob("images_*.npz"))) == 4
    assert tree_digest(image_folder) == before
