"""Names, folders and class lists: cnnlib.store.artifacts, the class settings and the image folder setting."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from cnnlib import config
from cnnlib.data import dataset, locate
from cnnlib.store import artifacts, schema  # noqa: E402


def _figure():
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.imshow(np.random.default_rng(0).integers(0, 255, (8, 8, 3), dtype=np.uint8), interpolation="bilinear")
    return fig


def test_reference_classes_write_to_the_committed_folders():
    out = artifacts.outputs_for(config.CLASSES)
    assert out.label == "" and out.root == config.REPO_ROOT
    assert out.results_dir == config.RESULTS_DIR and out.figures_dir == config.FIGURES_DIR
    assert out.manifest_path(42) == config.SPLITS_DIR / "split_seed42.csv"
    assert out.report_pdf == config.REPO_ROOT / "report" / "report.pdf"


def test_other_classes_write_to_a_labelled_folder(tmp_path):
    env = {"CNNLIB_OUTPUT_DIR": str(tmp_path)}
    out = artifacts.outputs_for(["brain", "ketch"], env)
    assert out.root == tmp_path / "brain-ketch" and out.results_dir == tmp_path / "brain-ketch" / "results"
    assert artifacts.outputs_for(["ketch", "brain"], env).root != out.root  # order is part of the run
    many = artifacts.outputs_for([f"class_{i:03d}" for i in range(96)], env)
    assert many.label.startswith("96-classes-") and len(many.label) == len("96-classes-") + 8


def test_figure_names_need_exactly_their_fields():
    assert (
        artifacts.FIGURES["feature_maps"].name(model="vgg19", layer="block1_conv2") == "feature_maps_vgg19_block1_conv2"
    )
    with pytest.raises(KeyError, match="needs fields"):
        artifacts.FIGURES["feature_maps"].name(model="vgg19")


def test_photo_grids_are_jpeg_plots_png_and_saving_is_deterministic(tmp_path):
    out = artifacts.Outputs(config.CLASSES, tmp_path)
    fig = _figure()
    photo = out.save_figure(fig, "gradcam_grid", model="m")
    assert fig.number not in plt.get_fignums()  # closed: a notebook does not embed a second copy
    plot = out.save_figure(_figure(), "accuracy_seeds")
    assert photo.path.suffix == ".jpg" and Image.open(photo.path).format == "JPEG"
    assert plot.path.suffix == ".png" and Image.open(plot.path).format == "PNG"
    first = photo.path.read_bytes()
    out.save_figure(_figure(), "gradcam_grid", model="m")
    assert photo.path.read_bytes() == first


def test_saved_figure_displays_as_a_link_without_machine_paths(monkeypatch):
    """The link is relative to the kernel's folder, which Jupyter sets to the notebook's own."""
    saved = artifacts.SavedFigure(config.FIGURES_DIR / "accuracy_seeds.png")
    assert repr(saved) == "figures/accuracy_seeds.png"
    monkeypatch.chdir(config.REPO_ROOT / "notebooks")
    assert saved._repr_markdown_() == "![accuracy_seeds](../figures/accuracy_seeds.png)"
    monkeypatch.chdir(config.REPO_ROOT)
    assert saved._repr_markdown_() == "![accuracy_seeds](figures/accuracy_seeds.png)"


def test_results_names_are_known(tmp_path):
    out = artifacts.Outputs(config.CLASSES, tmp_path)
    with pytest.raises(KeyError, match="unknown results name"):
        out.write_results("typo", {"provenance": {}})
    payload = dict.fromkeys(schema.Vgg19.keys())
    assert out.write_results("vgg19", payload).endswith("results/vgg19.json")
    with pytest.raises(FileNotFoundError, match="02_custom_architectures.ipynb"):
        out.read_results("arch1")


def test_custom_variants_match_the_architectures():
    from cnnlib.models import architectures

    assert tuple(architectures.VARIANTS) == artifacts.CUSTOM_VARIANTS


# --------------------------------------------------------------------------- class lists


def test_classes_setting():
    assert config.classes_setting({}) == list(config.CLASSES)
    assert config.classes_setting({"CNNLIB_CLASSES": "brain, ketch ,Faces"}) == ["brain", "ketch", "Faces"]
    assert config.classes_setting({"CNNLIB_CLASSES": "ALL"}) == "all"
    with pytest.raises(config.SettingError, match="more than once"):
        config.classes_setting({"CNNLIB_CLASSES": "brain,brain"})
    with pytest.raises(config.SettingError, match="at least two"):
        config.classes_setting({"CNNLIB_CLASSES": "brain"})
    with pytest.raises(config.SettingError, match="set but empty"):
        config.classes_setting({"CNNLIB_CLASSES": " "})


def test_example_class_defaults_to_the_reference_then_the_first():
    assert config.example_class(config.CLASSES) == config.EXAMPLE_CLASS
    assert config.example_class(["brain", "ketch"]) == "brain"
    assert config.example_class(["brain", "ketch"], "ketch") == "ketch"
    with pytest.raises(config.SettingError, match="not one of the classes"):
        config.example_class(["brain", "ketch"], "scorpion")


def _folder(tmp_path):
    for name in ("b_class", "a_class", "BACKGROUND_Google"):
        (tmp_path / name).mkdir()
        Image.new("RGB", (8, 8)).save(tmp_path / name / "image_0001.jpg")
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.txt").write_text("not a class")
    return tmp_path


def test_all_means_every_class_folder_with_images(tmp_path, monkeypatch):
    folder = _folder(tmp_path)
    monkeypatch.delenv("CALTECH101_DIR", raising=False)
    monkeypatch.setenv("CNNLIB_DATA_DIR", str(folder))
    assert locate.resolve_classes("all") == ("a_class", "b_class")
    assert locate.resolve_classes("b_class,a_class") == ("b_class", "a_class")  # papermill passes a string
    assert locate.find_dataset(["a_class"]) == folder


def test_data_dir_alias_and_conflict(tmp_path):
    folder = _folder(tmp_path)
    assert locate.find_dataset(["a_class"], env={"CALTECH101_DIR": str(folder)}) == folder
    assert (
        locate.find_dataset(["a_class"], env={"CNNLIB_DATA_DIR": str(folder), "CALTECH101_DIR": str(folder)}) == folder
    )
    with pytest.raises(config.SettingError, match="disagree"):
        locate.find_dataset(["a_class"], env={"CNNLIB_DATA_DIR": str(folder), "CALTECH101_DIR": "/elsewhere"})
    with pytest.raises(dataset.DatasetError, match="CNNLIB_DATA_DIR=.* lacks the class folder"):
        locate.find_dataset(["zebra"], env={"CNNLIB_DATA_DIR": str(folder)})


def test_jpeg_quality_keeps_photos_faithful(tmp_path):
    """The JPEG copy of a photo grid differs from the PNG rendering by little (mean abs < 3 of 255)."""
    fig = _figure()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=artifacts.DPI, bbox_inches="tight")
    png = np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"), np.float32)
    path = artifacts.save_figure_file(fig, tmp_path / "x.jpg", photo=True)
    jpg = np.asarray(Image.open(path).convert("RGB"), np.float32)
    assert jpg.shape == png.shape and np.abs(jpg - png).mean() < 3
