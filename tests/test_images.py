"""cnnlib.images: decoding odd files, the bad-image policy, the decoded-array cache; cnnlib.files."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from cnnlib import config, data, files, images
from conftest import tree_digest

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
    with pytest.raises(data.DatasetError, match="Cannot read image .*image_0002.jpg"):
        images.load_image(path)


def test_bad_images_stop_the_run_with_every_file_listed_or_are_skipped(dataset, monkeypatch):
    (dataset / "alpha" / "image_0002.jpg").write_bytes(b"")
    (dataset / "gamma" / "image_0005.jpg").write_bytes(b"not an image")
    before = tree_digest(dataset)
    monkeypatch.delenv(images.SKIP_ENV, raising=False)
    with pytest.raises(data.DatasetError) as info:
        images.check_images(dataset, CLASSES)
    message = str(info.value)
    assert "2 unreadable image(s)" in message and "alpha/image_0002.jpg" in message
    assert "gamma/image_0005.jpg" in message and "CNNLIB_SKIP_BAD_IMAGES=1" in message
    monkeypatch.setenv(images.SKIP_ENV, "1")
    with pytest.warns(UserWarning, match="Skipping 2 unreadable"):
        skipped = images.check_images(dataset, CLASSES)
    assert [s["path"] for s in skipped] == ["alpha/image_0002.jpg", "gamma/image_0005.jpg"]
    manifest = data.make_split(dataset, CLASSES, SIZES, exclude=[s["path"] for s in skipped])
    images.load_split(manifest, dataset, CLASSES, size=16)  # every manifest image decodes
    assert tree_digest(dataset) == before  # nothing in the user's folder changed


def test_load_split_shapes_labels_and_cache(dataset):
    manifest = data.make_split(dataset, CLASSES, SIZES, seed=3)
    arrays = images.load_split(manifest, dataset, CLASSES, size=48)
    x, y = arrays["train"]
    assert x.shape == (12, 48, 48, 3) and x.dtype == np.uint8
    assert sorted(np.bincount(y).tolist()) == [4, 4, 4]
    cached = images.load_split(manifest, dataset, CLASSES, size=48)
    assert all(np.array_equal(arrays[s][0], cached[s][0]) for s in arrays)
    (cache_file,) = config.cache_dir().glob("images_*.npz")
    cache_file.write_bytes(cache_file.read_bytes()[:64])  # truncated: rebuilt, not trusted
    rebuilt = images.load_split(manifest, dataset, CLASSES, size=48)
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
