"""The report's tables and sentences-as-data: results dicts in, rows of formatted strings out.

Pure functions (no files, no TensorFlow), so each can be tested on a hand-made dict. Numbers are
formatted in one place: ``num`` never prints "-0.00", p-values always carry three decimals.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from cnnlib.stats import statistics

SPLITS = ("train", "val", "test")


def num(value: float | None, digits: int = 2, signed: bool = False) -> str:
    """``value`` with ``digits`` decimals ("-" for None); a value that rounds to zero prints unsigned."""
    if value is None:
        return "-"
    text = f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"
    return text.lstrip("+-") if float(text) == 0 else text


def p_value(p: float) -> str:
    """A p-value with three decimals ("< 0.001" below that)."""
    return "< 0.001" if p < 0.0005 else f"{p:.3f}"


def pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def with_ci(metrics: Mapping) -> str:
    """'74.0% [64, 82]': an accuracy with its 95% Wilson interval in percent."""
    low, high = metrics["ci95"]
    return f"{100 * metrics['accuracy']:.1f}% [{100 * low:.0f}, {100 * high:.0f}]"


def points(difference: float, ci: Sequence[float]) -> str:
    """'-8.0 [-18.6, +2.8]': a difference of proportions and its interval, in percentage points."""
    return f"{num(100 * difference, 1, True)} [{num(100 * ci[0], 1, True)}, {num(100 * ci[1], 1, True)}]"


# --------------------------------------------------------------------------- against the reference


def reference_rows(reference: Mapping, ours: Mapping[str, Mapping]) -> list[dict]:
    """Our accuracy minus the reference's, per model and split, with Newcombe's interval for two
    independent proportions (it counts the reference's sampling error too). Train and validation rows are
    descriptive only; a VGG19 run without ImageNet weights is not comparable ("n/a")."""
    sizes, rows = reference["split_sizes"], []
    for model, ref in reference["accuracy"].items():
        row = {"model": model, "splits": {}}
        fallback = "weights" in ours[model] and not ours[model]["weights"]["is_imagenet"]
        for split in SPLITS:
            mine = ours[model]["metrics"][split]
            entry = {
                "ours": with_ci(mine),
                "reference": pct(ref[split]),
                "difference": "-",
                "role": "inferential" if split == "test" else "descriptive",
            }
            if ref[split] is not None and fallback:
                entry["difference"] = "n/a (not ImageNet)"
            elif ref[split] is not None:
                try:
                    result = statistics.against_reference(mine["correct"], mine["n"], ref[split], sizes[split], split)
                    entry["difference"] = points(result["difference"], result["ci"])
                except ValueError:
                    entry["difference"] = f"- ({ref[split]} x {sizes[split]} is not a whole number of images)"
            row["splits"][split] = entry
        rows.append(row)
    return rows


def reference_matrix_checks(reference: Mapping) -> list[dict]:
    """What each reference confusion matrix's own arithmetic says about the split it came from."""
    checks = []
    for model, matrix in reference["confusion"].items():
        total = sum(map(sum, matrix))
        diagonal = sum(matrix[i][i] for i in range(len(matrix)))
        acc = reference["accuracy"][model]
        checks.append(
            {
                "model": model,
                "labelled": reference["confusion_labelled"][model],
                "total": total,
                "diagonal": diagonal,
                "accuracy_from_matrix": pct(diagonal / total),
                "reported_val": pct(acc["val"]),
                "reported_test": pct(acc["test"]),
            }
        )
    return checks


# --------------------------------------------------------------------------- the all-categories run


def activation_max_sentence(am: Mapping) -> str:
    """Notebook 05's activation maximisation in one sentence: how hard each synthetic image drives its channel,
    against the strongest activation any training image gives it (results/patches.json "activation_maximisation")."""
    ratios = sorted(v["ratio"] for v in am["channels"].values())
    median = (
        ratios[len(ratios) // 2] if len(ratios) % 2 else (ratios[len(ratios) // 2 - 1] + ratios[len(ratios) // 2]) / 2
    )
    above = sum(r > 1 for r in ratios)
    verdict = (
        "every synthetic image exceeds anything in the data: it shows the pattern a channel responds to, "
        "exaggerated and repeated, not an object the network has seen"
        if above == len(ratios)
        else f"{above} of {len(ratios)} synthetic images exceed the strongest training patch; where one does not, "
        "the ascent found a weaker optimum than the data, and the top patches are the better picture of the channel"
    )
    return (
        f"Activation maximisation for the same {len(ratios)} channels of {am['model']} {am['layer']} ({am['steps']} "
        f"steps of gradient ascent from grey noise under jitter, scaling and blur, seed {am['seed']}): each image "
        f"drives its channel (largest value over positions) to {num(ratios[0])}-{num(ratios[-1])} times (median "
        f"{num(median)}) the strongest activation of any of the {am['training_images']} training images, so "
        f"{verdict}."
    )


def most_confused(confusion: Sequence[Sequence[int]], classes: Sequence[str], k: int = 10) -> list[dict]:
    """The ``k`` largest off-diagonal cells of a confusion matrix: which class is most often taken for which.

    Args:
        confusion: (K, K) counts, rows true, columns predicted.
        classes: the K class names in the matrix's order.
        k: how many pairs.

    Returns:
        [{"true", "predicted", "count", "n" (the true class's test images), "share" (count / n)}], largest count
        first; ties by larger share, then by the true and predicted names.
    """
    matrix = np.asarray(confusion, dtype=int)
    n = matrix.sum(axis=1)
    cells = [
        (int(matrix[t, p]), float(matrix[t, p] / n[t]), classes[t], classes[p], int(n[t]))
        for t, p in zip(*np.nonzero(matrix))
        if t != p
    ]
    cells.sort(key=lambda c: (-c[0], -c[1], c[2], c[3]))
    return [
        {"true": t, "predicted": p, "count": count, "n": total, "share": share}
        for count, share, t, p, total in cells[:k]
    ]


def scale_shown_models(scale: Mapping) -> list[str]:
    """The models the scale appendix details (confusions, figures): the best custom network by validation
    accuracy (ties: the first listed), then VGG19 when present."""
    found = scale["models"]
    custom = [m for m in found if m != "vgg19"]
    best = max(custom, key=lambda m: found[m]["val_accuracy"]) if custom else None
    return [m for m in (best, "vgg19") if m in found]


def scale_tables(scale: Mapping) -> dict:
    """``make scale`` (results/scale_all.json): mean per-class accuracy per model, easiest and hardest classes, and
    the five most frequent confusions of the best custom network and of VGG19."""
    best = scale_shown_models(scale)[0]

    def classes(rows: Sequence) -> str:
        return ", ".join(f"{name} {100 * acc:.0f}% ({n})" for name, acc, n in rows)

    return {
        "n_classes": scale["protocol"]["classes"],
        "images": scale["protocol"]["images"],
        "train_per_class": scale["protocol"]["train_per_class"],
        "val_per_class": scale["protocol"]["of_which_validation"],
        "max_test": scale["protocol"]["max_test_per_class"],
        "metric": scale["protocol"]["metric"],
        "vgg19_note": scale["vgg19_note"],
        "vgg19_is_imagenet": scale["vgg19_is_imagenet"],
        "best": best,
        "shown": scale_shown_models(scale),
        "models": [
            {
                "model": name,
                "mean": pct(m["mean_per_class_accuracy"]),
                "ci": f"[{100 * m['interval']['ci'][0]:.1f}, {100 * m['interval']['ci'][1]:.1f}]",
                "overall": pct(m["overall_accuracy"]),
                "val": pct(m["val_accuracy"]),
            }
            for name, m in scale["models"].items()
        ],
        "easiest": classes(scale["models"][best]["easiest_10"]),
        "hardest": classes(scale["models"][best]["hardest_10"]),
        "confused": [
            {
                "model": model,
                "true": pair["true"],
                "predicted": pair["predicted"],
                "images": f"{pair['count']} of {pair['n']} ({100 * pair['share']:.0f}%)",
            }
            for model in scale_shown_models(scale)
            for pair in most_confused(scale["models"][model]["confusion"], scale["class_names"], 5)
        ],
    }


# --------------------------------------------------------------------------- notebook 08


def _summary_rows(summary: Mapping[str, Mapping[str, Mapping]]) -> list[dict]:
    rows = []
    for model, by_split in summary.items():
        row = {"model": model, "runs": str(by_split["test"]["n"])}
        for split, t in by_split.items():
            row[split] = f"{num(100 * t['mean'], 1)} ± {num(100 * t['sd'], 1)}"
            low, high = max(0.0, 100 * t["ci"][0]), min(100.0, 100 * t["ci"][1])  # an accuracy lies in [0, 100]
            row[f"{split}_ci"] = f"[{num(low, 1)}, {num(high, 1)}]"
        rows.append(row)
    return rows


def pick_counts(picks: Mapping[str, Mapping]) -> str:
    """'arch1 (3 of 5), arch2 (2 of 5)' from {run: {"pick": model, ...}}."""
    counts: dict[str, int] = {}
    for pick in picks.values():
        counts[pick["pick"]] = counts.get(pick["pick"], 0) + 1
    return ", ".join(f"{m} ({n} of {len(picks)})" for m, n in sorted(counts.items(), key=lambda kv: -kv[1]))


def ties(picks: Mapping[str, Mapping]) -> list[str]:
    """The runs whose pick was a tie, and how it was broken."""
    return [f"{run}: {pick['rule']}" for run, pick in picks.items() if len(pick["tied"]) > 1]


def _fallback_note(primary: Mapping, weights: str) -> str:
    """What the primary comparison tests when its VGG19 is the random-init fallback (not ImageNet transfer)."""
    if "vgg19" not in (primary["A"], primary["B"]) or "not ImageNet" not in weights:
        return ""
    return (
        f" Here vgg19 has weights {weights}: a frozen random-feature base with a trained last layer, so this"
        " comparison does not test ImageNet transfer learning."
    )


def statistics_tables(stats: Mapping) -> dict:
    """Notebook 08: t-intervals over seeds and splits, picks with ties, the primary and secondary comparisons."""
    primary = (stats["primary"]["A"], stats["primary"]["B"])
    comparisons = [
        {
            "a": r["A"],
            "b": r["B"],
            "role": "primary" if (r["A"], r["B"]) == primary else "secondary",
            "a_only": r["a_only"],
            "b_only": r["b_only"],
            "difference": points(r["difference"], r["ci"]),
            "p": p_value(r["p"]),
            "p_holm": "-" if r["p_holm"] is None else p_value(r["p_holm"]),
        }
        for r in stats["comparisons"]
    ]
    bootstrap = [
        {
            "pair": pair,
            **{
                ("seeds" if level.startswith("seeds") else "images"): points(r["difference"], r["ci"])
                for level, r in by_level.items()
            },
        }
        for pair, by_level in stats["bootstrap"].items()
    ]
    return {
        "seeds": ", ".join(str(s) for s in stats["seeds"]),
        "split_seeds": ", ".join(str(s) for s in stats["split_seeds"]),
        "first_seed": str(stats["seeds"][0]),
        "n_seeds": len(stats["seeds"]),
        "seed_summary": _summary_rows(stats["seed_summary"]),
        "split_summary": _summary_rows(stats["split_summary"]),
        "picks_seed": pick_counts(stats["best_by_val_per_seed"]),
        "picks_split": pick_counts(stats["best_by_val_per_split"]),
        "ties": ties(stats["best_by_val_per_seed"]) + ties(stats["best_by_val_per_split"]),
        "primary": stats["primary"]["statement"] + _fallback_note(stats["primary"], stats["vgg19_weights"]),
        "comparisons": comparisons,
        "bootstrap": bootstrap,
        "n_boot": f"{stats['n_boot']:,}",
        "holm_family": sum(1 for r in stats["comparisons"] if r["p_holm"] is not None),
        "monte_carlo": _monte_carlo_sentence(stats["bootstrap_monte_carlo"], stats["primary"]),
        "weights": stats["vgg19_weights"],
        "vgg19_base": stats["vgg19_base"],
    }


def _monte_carlo_sentence(monte_carlo: Mapping[str, Mapping], primary: Mapping) -> str:
    """How far the primary pair's bootstrap endpoints moved over repeats with other random seeds."""
    some = next(iter(monte_carlo.values()))
    moved = max(100 * (high - low) for m in monte_carlo.values() for low, high in m["range"])
    largest_sd = max(100 * sd for m in monte_carlo.values() for sd in m["sd"])
    return (
        f"Repeating the {primary['A']} vs {primary['B']} bootstraps {some['repeats']} times with other random "
        f"seeds moved an endpoint by at most {num(moved, 1)} points (largest standard deviation {num(largest_sd, 2)})"
    )


# --------------------------------------------------------------------------- notebook 09


def sanity_tables(sanity: Mapping) -> dict:
    """Notebook 09: cascade (signed and absolute Spearman, SSIM, constant maps), calibration, data
    randomisation, faithfulness with paired intervals, and the RISE sensitivity row."""
    cascade, methods = sanity["cascading_randomization"], list(sanity["cascading_randomization"])
    steps = [r["randomized_down_to"] for r in cascade[methods[0]]]
    calibration = sanity["calibration"]["similarity"]

    def triple(r: Mapping) -> str:
        return f"{num(r['spearman'])} / {num(r['spearman_abs'])} / {num(r['ssim'])}"

    final = {m: cascade[m][-1] for m in methods}
    return {
        "model": sanity["model"],
        "n_images": sanity["n_images"],
        "methods": methods,
        "steps": steps,
        "seeds": ", ".join(str(s) for s in sanity["randomization_seeds"]),
        "n_seeds": len(sanity["randomization_seeds"]),
        "cascade": [
            {
                "step": step,
                **{m: triple(cascade[m][i]) for m in methods},
                **{f"{m} constant": str(cascade[m][i]["n_constant_randomized"]) for m in methods},
            }
            for i, step in enumerate(steps)
        ],
        "calibration_models": " and ".join(sanity["calibration"]["models"]),
        "calibration": [{"method": m, "similarity": triple(v)} for m, v in calibration.items()],
        "data_randomization": [
            {"method": m, "similarity": triple(v), "constant": str(v["n_constant_other"])}
            for m, v in sanity["data_randomization"].items()
        ],
        "random_label_accuracy": {k: pct(v) for k, v in sanity["random_label_model_accuracy"].items()},
        "final": {
            m: {
                "spearman": num(r["spearman"]),
                "spearman_abs": num(r["spearman_abs"]),
                "ssim": num(r["ssim"]),
                "constant": str(r["n_constant_randomized"]),
                "pairs": str(r["n_seeds"] * sanity["n_images"]),
                "calibration_abs": num(calibration[m]["spearman_abs"]),
                "above_calibration": bool(
                    r["spearman_abs"] is not None and r["spearman_abs"] > calibration[m]["spearman_abs"]
                ),
            }
            for m, r in final.items()
        },
        "faithfulness": [
            {"method": m, "deletion": num(v["deletion AUC"], 3), "insertion": num(v["insertion AUC"], 3)}
            for m, v in sanity["faithfulness_auc"].items()
        ],
        "faithfulness_differences": [
            {
                "pair": f"{r['A']} - {r['B']}",
                "curve": r["curve"],
                "difference": f"{num(r['difference'], 3, True)} [{num(r['ci'][0], 3, True)}, "
                f"{num(r['ci'][1], 3, True)}]",
            }
            for r in sanity["faithfulness_differences"]
        ],
        "rise": [
            {"method": m, "deletion": num(v["deletion AUC"], 3), "insertion": num(v["insertion AUC"], 3)}
            for m, v in sanity["rise_auc"].items()
        ],
        "baseline": sanity["faithfulness_baseline"],
        "random_draws": sanity["random_draws"],
        "faithfulness_images": sanity["faithfulness_images"],
        "faithfulness_steps": sanity["faithfulness_steps"],
    }
