"""Names and folders of everything the notebooks write and the report reads, defined once.

A run is identified by its class list. The reference's five classes write to the committed
folders (``results/``, ``figures/``, ``data/splits/``, ``report/report.pdf``); any other list
writes to ``<output dir>/<label>/`` (``CNNLIB_OUTPUT_DIR``, default ``<repo>/outputs``, never
committed), where the label names the classes, so two class lists never overwrite each other.

Figures are named from templates (``FIGURES``): photo grids are stored once as JPEG
(quality 90), plots as PNG. Notebooks show a saved figure by linking the file
(``SavedFigure``), not by embedding a second copy.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cnnlib import config
from cnnlib.store import schema
from cnnlib.store.files import atomic_write_bytes

JPEG_QUALITY = 90
DPI = 100  # plots: ~1200 px wide, sharp in the PDF (16 cm) and on screen
PHOTO_DPI = 85  # photo grids: ~1050 px wide, still ~160 dpi at the PDF's 17 cm; keeps the PDF under 3 MB


@dataclass(frozen=True)
class FigureSpec:
    """A figure's file-name template (fields in braces) and whether it holds photographs."""

    template: str
    photo: bool
    dpi: int | None = None  # None: PHOTO_DPI for photo grids, DPI for plots

    @property
    def suffix(self) -> str:
        return ".jpg" if self.photo else ".png"

    def name(self, **fields: object) -> str:
        needed = {f for _, f, _, _ in string.Formatter().parse(self.template) if f}
        if needed != set(fields):
            raise KeyError(f"figure {self.template!r} needs fields {sorted(needed)}, got {sorted(fields)}")
        return self.template.format(**fields)


FIGURES: dict[str, FigureSpec] = {
    "examples": FigureSpec("examples_per_class", photo=True),
    "training_curves": FigureSpec("training_curves_custom", photo=False),
    "confusion_grid": FigureSpec("confusion_custom_{split}_grid", photo=False),
    "confusion": FigureSpec("confusion_{model}_test", photo=False),
    "feature_maps": FigureSpec("feature_maps_{model}_{layer}", photo=True, dpi=75),  # 64 small tiles per grid
    "patches_argmax": FigureSpec("patches_argmax_{model}_{layer}", photo=True),
    "patches_top9": FigureSpec("patches_top9_{model}_{layer}", photo=True),
    "activation_max": FigureSpec("activation_max_{model}_{layer}", photo=True),
    "guided_backprop": FigureSpec("guided_backprop_{model}", photo=True),
    "gradcam_grid": FigureSpec("gradcam_grid_{model}", photo=True),
    "gradcam_upsampling": FigureSpec("gradcam_upsampling_{model}", photo=True),
    "guided_gradcam": FigureSpec("guided_gradcam_example", photo=True),
    "accuracy_seeds": FigureSpec("accuracy_seeds", photo=False),
    "accuracy_splits": FigureSpec("accuracy_splits", photo=False),
    "sanity_cascade": FigureSpec("sanity_cascading_randomization", photo=False),
    "sanity_examples": FigureSpec("sanity_cascading_examples", photo=True),
    "sanity_faithfulness": FigureSpec("sanity_deletion_insertion", photo=False),
    # written by `make scale`, not a notebook; 300 dpi: 96 class names in about 4 pt stay sharp when zoomed
    "scale_confusion": FigureSpec("scale_confusion_{model}", photo=False, dpi=300),
    "localisation_markers": FigureSpec("localisation_markers", photo=True),  # written by `make localisation`
    "method_comparison_examples": FigureSpec("method_comparison_examples_{model}", photo=True, dpi=70),  # 55 tiles
}

CUSTOM_VARIANTS = schema.CUSTOM_VARIANTS
# results file -> the notebook that writes it (the schema itself: cnnlib.store.schema)
RESULTS: dict[str, str] = {name: record.NOTEBOOK for name, record in schema.RECORDS.items()}
COMPACT_RESULTS = tuple(name for name, record in schema.RECORDS.items() if record.COMPACT)  # one line per key


def output_dir(env: Mapping[str, str] | None = None) -> Path:
    """Where runs on other class lists write (``CNNLIB_OUTPUT_DIR``, default ``<repo>/outputs``)."""
    value = config.env_setting("CNNLIB_OUTPUT_DIR", env)
    return config.REPO_ROOT / "outputs" if value is None else Path(value).expanduser().resolve()


def run_label(classes: Sequence[str]) -> str:
    """'' for the reference's classes (in its order); else the class names, or a count and hash."""
    classes = tuple(classes)
    if classes == config.CLASSES:
        return ""
    joined = "-".join(classes)
    digest = hashlib.sha256("\n".join(classes).encode()).hexdigest()[:8]
    return joined if len(joined) <= 60 and joined.isascii() else f"{len(classes)}-classes-{digest}"


@dataclass(frozen=True)
class SavedFigure:
    """A figure file; a notebook shows it as a link to the file (no second copy in the notebook)."""

    path: Path

    def __repr__(self) -> str:
        return shown_path(self.path)

    def _repr_markdown_(self) -> str:
        # relative to the kernel's folder, which Jupyter, nbconvert and nbval set to the notebook's own (the
        # committed notebooks/ or a run's <output dir>/<label>/notebooks/)
        link = Path(os.path.relpath(self.path, Path.cwd())).as_posix()
        return f"![{self.path.stem}]({link})"


def shown_path(path: Path) -> str:
    """A path for printing: relative to the repository when inside it, never machine-specific there."""
    try:
        return Path(path).resolve().relative_to(config.REPO_ROOT).as_posix()
    except ValueError:
        return str(path)


def save_figure_file(fig, path: Path, photo: bool, dpi: int = DPI) -> Path:
    """Write a matplotlib figure as PNG (plots) or JPEG (photo grids) without time-stamped metadata.

    The figure is closed afterwards, so a notebook does not embed a second copy of it.
    """
    import matplotlib.pyplot as plt
    from PIL import Image

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    if photo:
        with Image.open(io.BytesIO(buffer.getvalue())) as img:
            rgb = img.convert("RGB")
        buffer = io.BytesIO()
        rgb.save(buffer, format="JPEG", quality=JPEG_QUALITY, optimize=True)
    return atomic_write_bytes(Path(path), buffer.getvalue())


@dataclass(frozen=True)
class Outputs:
    """The folders of one run (a class list): results, figures, split manifests, the PDF."""

    classes: tuple[str, ...]
    root: Path  # the repository for the reference classes, else <output dir>/<label>

    @property
    def label(self) -> str:
        return run_label(self.classes)

    @property
    def results_dir(self) -> Path:
        return self.root / "results"

    @property
    def figures_dir(self) -> Path:
        return self.root / "figures"

    @property
    def splits_dir(self) -> Path:
        return self.root / "data" / "splits" if not self.label else self.root / "splits"

    @property
    def report_pdf(self) -> Path:
        return self.root / "report" / "report.pdf" if not self.label else self.root / "report.pdf"

    def manifest_path(self, seed: int) -> Path:
        return self.splits_dir / f"split_seed{seed}.csv"

    def figure_path(self, key: str, **fields: object) -> Path:
        spec = FIGURES[key]
        return self.figures_dir / (spec.name(**fields) + spec.suffix)

    def save_figure(self, fig, key: str, **fields: object) -> SavedFigure:
        """Save ``fig`` under the name ``FIGURES[key]`` gives for ``fields``; return it for display."""
        spec = FIGURES[key]
        dpi = spec.dpi or (PHOTO_DPI if spec.photo else DPI)
        return SavedFigure(save_figure_file(fig, self.figure_path(key, **fields), spec.photo, dpi))

    def write(self, record: schema.Record) -> str:
        """Write a results record to ``results/<its name>.json`` (sorted keys, stable formatting); return the
        shown path."""
        return self.write_results(schema.name_of(record), record.payload())

    def write_results(self, name: str, payload: dict) -> str:
        """Write ``results/name.json`` after checking its keys against ``schema.RECORDS[name]``; return its
        shown path."""
        from cnnlib.store.results import write_results

        if name not in RESULTS:
            raise KeyError(f"unknown results name {name!r}; declare it in cnnlib.store.schema.RECORDS")
        schema.check(name, payload, f"The payload for results/{name}.json")
        return shown_path(write_results(name, payload, self.results_dir, compact=name in COMPACT_RESULTS))

    def read_results(self, name: str) -> dict:
        """Load ``results/name.json``, checked against its record; a missing file names the notebook that writes
        it."""
        from cnnlib.store.results import read_results

        payload = read_results(name, self.results_dir, RESULTS.get(name))
        if name in RESULTS:
            schema.check(name, payload, str(self.results_dir / f"{name}.json"))
        return payload

    @property
    def benchmarks_path(self) -> Path:
        return self.results_dir / "benchmarks.json"

    def read_benchmarks(self) -> dict | None:
        """``results/benchmarks.json`` (``make bench``: every timing), None where this folder has none."""
        import json

        path = self.benchmarks_path
        return json.loads(path.read_text()) if path.is_file() else None


def outputs_for(classes: Sequence[str], env: Mapping[str, str] | None = None) -> Outputs:
    """The ``Outputs`` of a class list: the committed folders for the reference classes."""
    classes = tuple(classes)
    label = run_label(classes)
    return Outputs(classes, config.REPO_ROOT if not label else output_dir(env) / label)


def dumps_stable(payload: object) -> str:
    """JSON text that depends only on ``payload`` (sorted keys), for hashing inputs."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"))
