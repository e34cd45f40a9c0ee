"""Build the PDF report (report/report.pdf) from results/*.json and figures/*.png with Typst.

The Typst source (report/report.typ) holds the prose and layout; every number and table
comes from the data assembled here and passed in as one JSON input. Nothing is trained or
computed from images here: the report only reads what the notebooks wrote.

Run: ``python -m cnnlib.report`` (or ``make pdf``).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from cnnlib import config
from cnnlib.evaluation import wilson_interval
from cnnlib.files import atomic_write, file_sha256
from cnnlib.results import read_results

REPORT_DIR = config.REPO_ROOT / "report"
SOURCE = REPORT_DIR / "report.typ"
OUTPUT = REPORT_DIR / "report.pdf"
BUILD_DIR = REPORT_DIR / ".build"  # intermediate JPEG copies of the figures, not committed
REFERENCE = config.DATA_DIR / "reference_report.json"
VARIANTS = ("arch1", "arch2", "arch2_transfer", "arch3", "arch3_transfer")

# results file -> the notebook that writes it
NOTEBOOK_OF = {
    "data_split": "01_data_split.ipynb",
    **{v: "02_custom_architectures.ipynb" for v in VARIANTS},
    "custom_summary": "02_custom_architectures.ipynb",
    "vgg19": "03_vgg19.ipynb",
    "feature_maps": "04_feature_maps.ipynb",
    "patches": "05_max_activating_patches.ipynb",
    "guided_backprop": "06_guided_backprop.ipynb",
    "gradcam": "07_gradcam.ipynb",
    "statistics": "08_statistics.ipynb",
    "sanity": "09_sanity_checks.ipynb",
}


class ReportInputMissing(FileNotFoundError):
    """A results file or figure the report needs is absent; the message names the notebook to run."""


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _with_ci(metrics: dict) -> str:
    low, high = metrics["ci95"]
    return f"{100 * metrics['accuracy']:.1f}% [{100 * low:.0f}, {100 * high:.0f}]"


def _git_commit() -> str:
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=config.REPO_ROOT, capture_output=True,
                                text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "cnnlib", "notebooks"], cwd=config.REPO_ROOT,
                               capture_output=True, text=True, check=True).stdout.strip()
        return commit + (" (with uncommitted changes to cnnlib/ or notebooks/)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"


def _reference_rows(reference: dict, ours: dict[str, dict]) -> list[dict]:
    """Reference accuracy next to ours, with both 95% intervals and whether the reference lies in ours.

    A VGG19 run without ImageNet weights is not comparable: its rows say "n/a" instead of yes/no.
    """
    sizes = reference["split_sizes"]
    rows = []
    for model, ref in reference["accuracy"].items():
        row = {"model": model, "splits": {}}
        for split in ("train", "val", "test"):
            mine = ours[model]["metrics"][split]
            entry = {"ours": _with_ci(mine), "reference": _pct(ref[split]), "reference_ci": "-", "consistent": "-"}
            if ref[split] is not None:
                low, high = wilson_interval(round(ref[split] * sizes[split]), sizes[split])
                entry["reference_ci"] = f"[{100 * low:.0f}, {100 * high:.0f}]"
                entry["consistent"] = "yes" if mine["ci95"][0] <= ref[split] <= mine["ci95"][1] else "no"
                if "weights" in ours[model] and not ours[model]["weights"]["is_imagenet"]:
                    entry["consistent"] = "n/a"
            row["splits"][split] = entry
        rows.append(row)
    return rows


def _reference_matrix_checks(reference: dict) -> list[dict]:
    """What each reference confusion matrix's own arithmetic says about the split it came from."""
    checks = []
    for model, matrix in reference["confusion"].items():
        total = sum(map(sum, matrix))
        diagonal = sum(matrix[i][i] for i in range(len(matrix)))
        acc = reference["accuracy"][model]
        checks.append({"model": model, "labelled": reference["confusion_labelled"][model], "total": total,
                       "diagonal": diagonal, "accuracy_from_matrix": _pct(diagonal / total),
                       "reported_val": _pct(acc["val"]), "reported_test": _pct(acc["test"])})
    return checks


def _for_pdf(figures_dir: Path, name: str) -> str:
    """A JPEG copy (quality 90) of ``figures/name.png`` in report/.build/, as a path from the repository root.

    The PNG figures hold photographs; embedded as JPEG they keep the PDF a few MB instead of 20.
    """
    from PIL import Image

    target = BUILD_DIR / f"{name}.jpg"
    with Image.open(Path(figures_dir) / f"{name}.png") as img:
        rgb = img.convert("RGB")
    atomic_write(target, lambda tmp: rgb.save(tmp, format="JPEG", quality=90, optimize=True))
    return "/" + target.relative_to(config.REPO_ROOT).as_posix()


def _counts(picks: dict[str, str]) -> str:
    """'arch1 (3 of 5), arch2 (2 of 5)' from {run: picked model}."""
    counts: dict[str, int] = {}
    for model in picks.values():
        counts[model] = counts.get(model, 0) + 1
    return ", ".join(f"{m} ({n} of {len(picks)})" for m, n in sorted(counts.items(), key=lambda kv: -kv[1]))


def _statistics(stats: dict) -> dict:
    """Tables of notebook 08: mean +/- sd over seeds and splits, picks, McNemar tests."""
    def summary(table: dict) -> list[dict]:
        return [{"model": m, **{k: str(v) for k, v in row.items()}} for m, row in table.items()]

    seeds = [str(s) for s in stats["seeds"]]
    mcnemar = []
    for row in stats["mcnemar"][seeds[0]]:
        significant = sum(1 for s in seeds for r in stats["mcnemar"][s]
                          if (r["A"], r["B"]) == (row["A"], row["B"]) and r["significant at 5%"])
        mcnemar.append({"a": row["A"], "b": row["B"], "a_only": row["A right, B wrong"],
                        "b_only": row["A wrong, B right"], "p": f"{row['p']:.3g}",
                        "significant": f"{significant} of {len(seeds)}"})
    return {"seeds": ", ".join(seeds), "split_seeds": ", ".join(str(s) for s in stats["split_seeds"]),
            "first_seed": seeds[0], "seed_summary": summary(stats["seed_summary"]),
            "split_summary": summary(stats["split_summary"]), "picks_seed": _counts(stats["best_by_val_per_seed"]),
            "picks_split": _counts(stats["best_by_val_per_split"]), "mcnemar": mcnemar,
            "weights": stats["vgg19_weights"]}


def _sanity(sanity: dict) -> dict:
    """Tables of notebook 09: similarity per randomisation step, data randomisation, deletion/insertion AUC."""
    cascade = sanity["cascading_randomization"]
    methods = list(cascade)
    steps = [r["randomized_down_to"] for r in cascade[methods[0]]]
    return {
        "model": sanity["model"], "n_images": len(sanity["images"]), "methods": methods, "steps": steps,
        "cascade": [{"step": step, **{m: f"{cascade[m][i]['spearman']:.2f} / {cascade[m][i]['ssim']:.2f}" for m in methods}}
                    for i, step in enumerate(steps)],
        "data_randomization": [{"method": m, "spearman": f"{v['spearman']:.2f}", "ssim": f"{v['ssim']:.2f}"}
                               for m, v in sanity["data_randomization"].items()],
        "random_label_accuracy": {k: _pct(v) for k, v in sanity["random_label_model_accuracy"].items()},
        "faithfulness": [{"method": m, "deletion": f"{v['deletion AUC']:.3f}", "insertion": f"{v['insertion AUC']:.3f}"}
                         for m, v in sanity["faithfulness_auc"].items()],
        "faithfulness_images": sanity["faithfulness_images"], "faithfulness_steps": sanity["faithfulness_steps"],
        "final_spearman": {m: f"{cascade[m][-1]['spearman']:.2f}" for m in methods},
        "guided_more_stable": bool(cascade["guided backprop"][-1]["spearman"] > cascade["Grad-CAM"][-1]["spearman"]),
    }


def collect(results_dir: Path = config.RESULTS_DIR, figures_dir: Path = config.FIGURES_DIR) -> dict:
    """Everything the report shows, as plain JSON-able data; raises ``ReportInputMissing`` on a gap."""
    loaded = {}
    for name, notebook in NOTEBOOK_OF.items():
        try:
            loaded[name] = read_results(name, results_dir, notebook)
        except FileNotFoundError as exc:
            raise ReportInputMissing(f"The report needs results/{name}.json: {exc}") from exc
    summary, vgg, split = loaded["custom_summary"], loaded["vgg19"], loaded["data_split"]
    best = summary["best_by_val"]
    reference = json.loads(REFERENCE.read_text())
    figures = {
        "examples": "examples_per_class", "curves": "training_curves_custom",
        "confusion_val": "confusion_custom_val_grid", "confusion_test": "confusion_custom_test_grid",
        "confusion_best": f"confusion_{best}_test", "confusion_vgg19": "confusion_vgg19_test",
        "feature_maps": [f"feature_maps_{best}_{layer}" for layer in loaded["feature_maps"]["custom_layers"]],
        "feature_maps_vgg19": [f"feature_maps_vgg19_{layer}" for layer in loaded["feature_maps"]["vgg19_layers"]],
        "argmax_custom": f"patches_argmax_{best}", "argmax_vgg19": "patches_argmax_vgg19_block5_conv4",
        "top9": [f"patches_top9_{key.replace('/', '_')}" for key in loaded["patches"]["top9_training_patches"]],
        "guided_custom": f"guided_backprop_{best}", "guided_vgg19": "guided_backprop_vgg19",
        "gradcam_custom": f"gradcam_grid_{best}", "gradcam_vgg19": "gradcam_grid_vgg19",
        "gradcam_upsampling": f"gradcam_upsampling_{best}",
        "guided_gradcam": "guided_gradcam_scorpion",
        "accuracy_seeds": "accuracy_seeds", "accuracy_splits": "accuracy_splits",
        "sanity_cascade": "sanity_cascading_randomization", "sanity_examples": "sanity_cascading_examples",
        "sanity_faithfulness": "sanity_deletion_insertion",
    }
    for value in figures.values():
        for name in value if isinstance(value, list) else [value]:
            if not (Path(figures_dir) / f"{name}.png").is_file():
                raise ReportInputMissing(f"Figure figures/{name}.png is missing: run the notebooks (`make report`).")
    figures = {k: ([_for_pdf(figures_dir, n) for n in v] if isinstance(v, list) else _for_pdf(figures_dir, v))
               for k, v in figures.items()}
    ours = {**{v: loaded[v] for v in VARIANTS}, "vgg19": vgg}
    provenance = vgg["provenance"]
    checksums = config.CHECKSUMS_FILE
    return {
        "classes": split["classes"],
        "table1": [{"class": c, **split["counts"][c]} for c in [*split["classes"], "total"]],
        "resize_method": split["resize_method"], "image_size": split["image_size"],
        "skipped_unreadable": len(split.get("skipped_unreadable", [])),
        "settings": loaded["arch1"]["provenance"]["training_settings"],
        "arch_tables": summary["tables"],
        "variants": [{"name": v, "transferred_from": loaded[v]["training"]["transferred_from"] or "-",
                      "epochs": loaded[v]["training"]["epochs_run"], "best_epoch": loaded[v]["training"]["best_epoch"],
                      **{s: _with_ci(loaded[v]["metrics"][s]) for s in ("train", "val", "test")}} for v in VARIANTS],
        "best": best, "best_test": _with_ci(loaded[best]["metrics"]["test"]),
        "vgg19": {"weights": vgg["weights"], "head": vgg["head"], "preprocessing": vgg["preprocessing"],
                  "fine_tune_block5": vgg["fine_tune_block5"], "epochs": vgg["training"]["epochs_run"],
                  **{s: _with_ci(vgg["metrics"][s]) for s in ("train", "val", "test")}},
        "table10": [{"model": f"{best} (best custom)", **{s: _with_ci(loaded[best]["metrics"][s]) for s in ("train", "val", "test")}},
                    {"model": f"VGG19 [{vgg['weights']['label']}]", **{s: _with_ci(vgg["metrics"][s]) for s in ("train", "val", "test")}}],
        "reference_rows": _reference_rows(reference, ours),
        "reference_matrices": _reference_matrix_checks(reference),
        "reference_best": reference["best_by_val"],
        "interpret": {"scorpion": loaded["feature_maps"]["image"], "gradcam_images": loaded["gradcam"]["images"],
                      "guided_maps": loaded["guided_backprop"]["feature_maps_1_based"],
                      "custom_last_layer": loaded["guided_backprop"]["custom_layer"]},
        "statistics": _statistics(loaded["statistics"]),
        "sanity": _sanity(loaded["sanity"]),
        "figures": figures,
        "provenance": {"seed": provenance["seed"], "profile": provenance["profile"],
                       "split_manifest": split["manifest"], "split_manifest_sha256": provenance["split_manifest_sha256"],
                       "dataset_checksums_sha256": file_sha256(checksums), "images_verified": split["images_verified"],
                       "packages": provenance["packages"], "git_commit": _git_commit()},
    }


def build(output: Path = OUTPUT, results_dir: Path = config.RESULTS_DIR, figures_dir: Path = config.FIGURES_DIR) -> Path:
    """Compile report/report.typ with the collected data into ``output``; return its path."""
    import typst

    data = collect(results_dir, figures_dir)
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    typst.compile(str(SOURCE), output=str(output), root=str(config.REPO_ROOT),
                  sys_inputs={"data": json.dumps(data)})
    return Path(output)


if __name__ == "__main__":
    print("wrote", build().relative_to(config.REPO_ROOT))
