"""Build the PDF report (report/report.pdf) from results/*.json and figures/ with Typst.

The Typst source (report/report.typ) holds the prose and layout; every number and table
comes from the data assembled here and passed in as one JSON input. Nothing is trained or
computed from images here: the report only reads what the notebooks wrote.

The PDF depends only on its inputs: it carries a SHA-256 of them (results, figures, the Typst
source) instead of a commit or a date, and a fixed creation date, so equal inputs give equal bytes.

Run: ``python -m cnnlib.report.pdf`` (or ``make pdf``); ``CNNLIB_CLASSES`` selects another run's outputs.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

from cnnlib import arithmetic, config
from cnnlib.report.findings import headline
from cnnlib.report.localisation_tables import localisation_rows, localisation_sentence
from cnnlib.report.method_tables import method_comparison_tables
from cnnlib.report.tables import (
    activation_max_sentence,
    reference_matrix_checks,
    reference_rows,
    sanity_tables,
    scale_tables,
    statistics_tables,
    with_ci,
)
from cnnlib.store import artifacts
from cnnlib.store.files import atomic_write_bytes, file_sha256

REPORT_DIR = config.REPO_ROOT / "report"
SOURCE = REPORT_DIR / "report.typ"
REFERENCE = config.DATA_DIR / "reference_report.json"
VARIANTS = artifacts.CUSTOM_VARIANTS


class ReportInputMissing(FileNotFoundError):
    """A results file or figure the report needs is absent; the message names the notebook to run."""


def _inputs_digest(paths: list[Path]) -> str:
    """SHA-256 over the names and bytes of the report's inputs: equal inputs, equal PDF."""
    digest = hashlib.sha256()
    for path in sorted(paths, key=lambda p: p.name):
        digest.update(path.name.encode() + b"\0" + bytes.fromhex(file_sha256(path)))
    return digest.hexdigest()


def figure_keys(loaded: dict) -> dict[str, list[tuple[str, dict]]]:
    """The report's figures: {slot in report.typ: [(key in artifacts.FIGURES, its name fields)]}."""
    best = loaded["custom_summary"]["best_by_val"]
    fm, patches = loaded["feature_maps"], loaded["patches"]
    one = {  # slots holding a single figure
        "examples": ("examples", {}),
        "curves": ("training_curves", {}),
        "confusion_val": ("confusion_grid", {"split": "val"}),
        "confusion_test": ("confusion_grid", {"split": "test"}),
        "confusion_best": ("confusion", {"model": best}),
        "confusion_vgg19": ("confusion", {"model": "vgg19"}),
        "argmax_custom": ("patches_argmax", {"model": best, "layer": patches["argmax_custom_layer"]}),
        "argmax_vgg19": ("patches_argmax", {"model": "vgg19", "layer": patches["argmax_vgg19_layer"]}),
        "activation_max": (
            "activation_max",
            {
                "model": patches["activation_maximisation"]["model"],
                "layer": patches["activation_maximisation"]["layer"],
            },
        ),
        "guided_custom": ("guided_backprop", {"model": best}),
        "guided_vgg19": ("guided_backprop", {"model": "vgg19"}),
        "gradcam_custom": ("gradcam_grid", {"model": best}),
        "gradcam_vgg19": ("gradcam_grid", {"model": "vgg19"}),
        "gradcam_upsampling": ("gradcam_upsampling", {"model": best}),
        "guided_gradcam": ("guided_gradcam", {}),
        "accuracy_seeds": ("accuracy_seeds", {}),
        "accuracy_splits": ("accuracy_splits", {}),
        "sanity_cascade": ("sanity_cascade", {}),
        "sanity_examples": ("sanity_examples", {}),
        "sanity_faithfulness": ("sanity_faithfulness", {}),
        "method_comparison_examples": ("method_comparison_examples", {"model": best}),
    }
    many = {
        "feature_maps": [("feature_maps", {"model": best, "layer": layer}) for layer in fm["custom_layers"]],
        "feature_maps_vgg19": [("feature_maps", {"model": "vgg19", "layer": layer}) for layer in fm["vgg19_layers"]],
        "top9": [
            ("patches_top9", {"model": model, "layer": layer})
            for model, layer in (key.split("/") for key in patches["top9_training_patches"])
        ],
    }
    return {**{slot: [entry] for slot, entry in one.items()}, **many}


def collect(outputs: artifacts.Outputs | None = None) -> tuple[dict, list[Path]]:
    """Everything the report shows, as plain JSON-able data, and the files it reads.

    Raises ``ReportInputMissing`` on a gap, naming the notebook to run.
    """
    outputs = outputs or artifacts.outputs_for(config.CLASSES)
    loaded = {}
    for name in artifacts.RESULTS:
        try:
            loaded[name] = outputs.read_results(name)
        except FileNotFoundError as exc:
            raise ReportInputMissing(f"The report needs results/{name}.json: {exc}") from exc
    summary, vgg, split = loaded["custom_summary"], loaded["vgg19"], loaded["data_split"]
    best = summary["best_by_val"]
    reference = json.loads(REFERENCE.read_text())
    figures, inputs = (
        {},
        [
            *sorted(REPORT_DIR.glob("*.typ")),  # report.typ and every file it includes or imports
            REFERENCE,
            *(outputs.results_dir / f"{n}.json" for n in artifacts.RESULTS),
        ],
    )
    for slot, entries in figure_keys(loaded).items():
        paths = [outputs.figure_path(key, **fields) for key, fields in entries]
        for path in paths:
            if not path.is_file():
                raise ReportInputMissing(f"Figure {path} is missing: run the notebooks (`make report`).")
        inputs += paths
        shown = [_for_pdf(path, outputs) for path in paths]
        figures[slot] = shown if slot in ("feature_maps", "feature_maps_vgg19", "top9") else shown[0]
    benchmarks = outputs.read_benchmarks()  # the report's ms-per-image column
    if benchmarks is not None:
        inputs.append(outputs.benchmarks_path)
    # The all-categories run (`make scale`, not part of `make report`): an appendix when its results exist.
    scale, scale_json = None, outputs.results_dir / "scale_all.json"
    if not outputs.label and scale_json.is_file():
        scale = scale_tables(json.loads(scale_json.read_text()))
        shown = [outputs.figure_path("scale_confusion", model=m) for m in scale["shown"]]
        for figure in shown:
            if not figure.is_file():
                raise ReportInputMissing(
                    f"Figure {figure} is missing: run `python -m cnnlib.run.scale --figures-only` (or `make scale`)."
                )
        scale["figures"] = [_for_pdf(figure, outputs) for figure in shown]
        inputs += [scale_json, *shown]
    localisation = _localisation(outputs)
    inputs += localisation.pop("inputs")
    ours = {**{v: loaded[v] for v in VARIANTS}, "vgg19": vgg}
    provenance = vgg["provenance"]
    checksums = config.CHECKSUMS_FILE
    return {
        "classes": split["classes"],
        "is_reference_run": tuple(split["classes"]) == config.CLASSES,
        "example_class": loaded["feature_maps"]["example_class"],
        "table1": [{"class": c, **split["counts"][c]} for c in [*split["classes"], "total"]],
        "resize_method": split["resize_method"],
        "image_size": split["image_size"],
        "skipped_unreadable": len(split.get("skipped_unreadable", [])),
        "settings": loaded["arch1"]["provenance"]["training_settings"],
        "arch_tables": summary["tables"],
        "variants": [
            {
                "name": v,
                "transferred_from": loaded[v]["training"]["transferred_from"] or "-",
                "epochs": loaded[v]["training"]["epochs_run"],
                "best_epoch": loaded[v]["training"]["best_epoch"],
                **{s: with_ci(loaded[v]["metrics"][s]) for s in ("train", "val", "test")},
            }
            for v in VARIANTS
        ],
        "best": best,
        "best_test": with_ci(loaded[best]["metrics"]["test"]),
        "vgg19": {
            "weights": vgg["weights"],
            "head": vgg["head"],
            "preprocessing": vgg["preprocessing"],
            "fine_tune_block5": vgg["fine_tune_block5"],
            "epochs": vgg["training"]["epochs_run"],
            "best_epoch": vgg["training"]["best_epoch"],
            **{s: with_ci(vgg["metrics"][s]) for s in ("train", "val", "test")},
        },
        "table10": [
            {
                "model": f"{best} (best custom)",
                **{s: with_ci(loaded[best]["metrics"][s]) for s in ("train", "val", "test")},
            },
            {
                "model": f"VGG19 [{vgg['weights']['label']}]",
                **{s: with_ci(vgg["metrics"][s]) for s in ("train", "val", "test")},
            },
        ],
        "reference_rows": reference_rows(reference, ours),
        "reference_matrices": reference_matrix_checks(reference),
        "reference_best": reference["best_by_val"],
        "interpret": {
            "example": loaded["feature_maps"]["image"],
            "gradcam_images": loaded["gradcam"]["images"],
            "guided_maps": loaded["guided_backprop"]["feature_maps_1_based"],
            "custom_last_layer": loaded["guided_backprop"]["custom_layer"],
            "vgg19_layers": loaded["feature_maps"]["vgg19_layers"],
            "top9_keys": list(loaded["patches"]["top9_training_patches"]),
            "activation_max": activation_max_sentence(loaded["patches"]["activation_maximisation"]),
        },
        "statistics": statistics_tables(loaded["statistics"]),
        "conclusions": headline({**loaded, "vgg19": vgg}, strong=lambda phrase: phrase),
        "sanity": sanity_tables(loaded["sanity"]),
        "scale": scale,
        "localisation": localisation,
        "methods": method_comparison_tables(loaded["method_comparison"], benchmarks),
        "figures": figures,
        "provenance": {
            "seed": provenance["seed"],
            "profile": provenance["profile"],
            "split_manifest": split["manifest"],
            "split_manifest_sha256": provenance["split_manifest_sha256"],
            "dataset_checksums_sha256": file_sha256(checksums),
            "images_verified": split["images_verified"],
            "packages": provenance["packages"],
            "arithmetic": arithmetic.summary(provenance.get("arithmetic")),
            "timings_machine": _timings_machine(benchmarks),
        },
    }, inputs


def _timings_machine(benchmarks: dict | None) -> str:
    """Where the timings in the report were measured (``results/benchmarks.json``'s machine), in words."""
    machine = (benchmarks or {}).get("machine")
    if not machine:
        return "no timings (results/benchmarks.json absent)"
    return f"{machine['cpus']} CPU cores, {machine['platform']} (make bench)"


PDF_WIDTH = 760  # px: photo grids in the PDF (at most 17 cm wide, >= 110 dpi); keeps the PDF under 3 MB
PDF_JPEG_QUALITY = 75


def _localisation(outputs: artifacts.Outputs) -> dict:
    """The upsampling benchmark (`make localisation`; it does not depend on the class list, so every run's report reads
    the committed results/localisation.json and figure): table rows, sentence, winner, figure, and the files read."""
    path = config.RESULTS_DIR / "localisation.json"
    figure = artifacts.outputs_for(config.CLASSES).figure_path("localisation_markers")
    for needed in (path, figure):
        if not needed.is_file():
            raise ReportInputMissing(f"{needed} is missing: run `make localisation` (the upsampling benchmark).")
    loc = json.loads(path.read_text())
    return {
        "rows": localisation_rows(loc, loc["winner"]),
        "sentence": localisation_sentence(loc),
        "winner": loc["winner"],
        "figure": _for_pdf(figure, outputs),
        "inputs": [path, figure],
    }


def _for_pdf(path: Path, outputs: artifacts.Outputs) -> str:
    """The path Typst embeds for a figure: the file itself (plots, PNG), or for a photo grid (JPEG) a copy at
    most ``PDF_WIDTH`` wide in report/.build/ (never committed; figures/ keeps the one full-quality copy)."""
    from PIL import Image

    root = _typst_root(outputs)
    if path.suffix.lower() != ".jpg":
        return "/" + path.resolve().relative_to(root).as_posix()
    with Image.open(path) as img:
        width = min(img.width, PDF_WIDTH)
        small = img.convert("RGB").resize((width, round(img.height * width / img.width)), Image.LANCZOS)
    build = REPORT_DIR / ".build" if not outputs.label else outputs.root / ".build"  # never committed
    target = build / path.name
    buffer = io.BytesIO()
    small.save(buffer, format="JPEG", quality=PDF_JPEG_QUALITY, optimize=True)
    atomic_write_bytes(target, buffer.getvalue())
    return "/" + target.resolve().relative_to(root).as_posix()


def _typst_root(outputs: artifacts.Outputs) -> Path:
    """The folder Typst may read from: the repository, or a parent that also holds ``outputs``."""
    import os

    return Path(os.path.commonpath([config.REPO_ROOT, outputs.root.resolve()]))


def build(outputs: artifacts.Outputs | None = None, output: Path | None = None) -> Path:
    """Compile report/report.typ with the collected data into ``output`` (default: the run's PDF)."""
    import typst

    outputs = outputs or artifacts.outputs_for(config.CLASSES)
    data, inputs = collect(outputs)
    data["provenance"]["inputs_sha256"] = _inputs_digest(inputs)
    output = Path(output or outputs.report_pdf)
    output.parent.mkdir(parents=True, exist_ok=True)
    source = "/" + SOURCE.relative_to(_typst_root(outputs)).as_posix()
    pdf = typst.compile(
        str(_typst_root(outputs)) + source,
        root=str(_typst_root(outputs)),
        sys_inputs={"data": json.dumps(data, sort_keys=True)},
    )
    return atomic_write_bytes(output, pdf)


def main() -> None:
    """``python -m cnnlib.report.pdf``: the PDF of the run ``CNNLIB_CLASSES`` selects (default: the reference's)."""
    from cnnlib.data import locate

    outputs = artifacts.outputs_for(locate.resolve_classes(config.classes_setting()))
    path = build(outputs)
    print("wrote", artifacts.shown_path(path))


if __name__ == "__main__":
    main()
