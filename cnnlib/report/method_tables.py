"""The method comparison's table and takeaways (notebook 10, the report's section 13): results dicts in, rows of
formatted strings and sentences out.

Pure functions like ``tables`` (no files, no TensorFlow); every ranking sentence names its paired interval and
Holm-corrected test, and states the reduced settings it was drawn under.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from cnnlib import methods
from cnnlib.report.tables import num, p_value


def _interval(value: Mapping | None, digits: int = 3) -> str:
    """'0.123 [0.100, 0.150]' from {"mean", "ci"}; '-' when nothing was compared."""
    if not value or value.get("mean") is None:
        return "-"
    if value.get("ci") is None:
        return num(value["mean"], digits)
    low, high = value["ci"]
    return f"{num(value['mean'], digits)} [{num(low, digits)}, {num(high, digits)}]"


def _paired(row: Mapping | None, digits: int = 2) -> str:
    """'-0.12 [-0.18, -0.06], Holm p < 0.001' from a ``paired_score_family`` row; '-' when nothing was compared."""
    if not row:
        return "-"
    low, high = row["ci"]
    return (
        f"{num(row['difference'], digits, True)} [{num(low, digits, True)}, {num(high, digits, True)}], {_holm_p(row)}"
    )


def _holm_p(row: Mapping) -> str:
    text = p_value(row["p_holm"])
    return f"Holm p {text}" if text.startswith("<") else f"Holm p = {text}"


def _benchmark_key(name: str) -> str:
    """The method's key in results/benchmarks.json (the method table's), "" for a name the table lacks."""
    try:
        return methods.entry(name).key
    except KeyError:
        return ""


def method_comparison_tables(results: Mapping, benchmarks: Mapping | None = None) -> dict:
    """Notebook 11's table: one row per method, randomisation / deletion / insertion with intervals, ms per image.

    ``results`` is results/method_comparison.json; ms per image come from ``benchmarks`` (results/benchmarks.json,
    "methods"; the notebook's own timings change from run to run and are not stored), "-" where absent. Also
    names the best method on each measure (for the prose) and the random baseline's AUCs.
    """
    custom, vgg = results["custom"], results["vgg19"]
    summary = custom["summary"]
    methods = results["methods"]
    models = (benchmarks or {}).get("methods", {}).get("models", {})

    def bench_ms(model: str, method: str) -> float | None:
        entry = models.get(model, {}).get("methods", {}).get(_benchmark_key(method), {})
        return entry.get("ours_ms")

    rows = [
        {
            "method": m,
            "randomization": _interval(summary[m]["randomization_spearman_abs"], 2),
            "calibration": _interval(summary[m].get("calibration_spearman_abs"), 2),
            "randomization_vs_calibration": _paired(summary[m].get("randomization_vs_calibration")),
            "constant": f"{summary[m]['n_constant_trained']} / {summary[m]['n_constant_randomized']} / "
            f"{summary[m].get('n_constant_calibration', '-')}",
            "deletion": _interval(summary[m]["deletion_auc"]),
            "insertion": _interval(summary[m]["insertion_auc"]),
            "deletion_vs_random": f"{num(summary[m]['deletion_vs_random']['difference'], 3, True)} "
            f"[{num(summary[m]['deletion_vs_random']['ci'][0], 3, True)}, "
            f"{num(summary[m]['deletion_vs_random']['ci'][1], 3, True)}]",
            "insertion_vs_random": f"{num(summary[m]['insertion_vs_random']['difference'], 3, True)} "
            f"[{num(summary[m]['insertion_vs_random']['ci'][0], 3, True)}, "
            f"{num(summary[m]['insertion_vs_random']['ci'][1], 3, True)}]",
            "ms": num(bench_ms(custom["model"], m), 1),
            "vgg19_ms": num(bench_ms("VGG19", m), 0),
        }
        for m in methods
    ]
    baseline = summary[custom["baseline"]]

    def best(key: str, sign: int) -> str:
        return max(methods, key=lambda m: sign * summary[m][key]["mean"])

    def similarity(m: str) -> float:
        return summary[m]["randomization_spearman_abs"]["mean"]

    compared = [m for m in methods if similarity(m) is not None]
    return {
        "takeaways": method_takeaways(summary, methods, custom),
        "ig_completeness": completeness_sentence(custom.get("ig_completeness")),
        "model": custom["model"],
        "weights": custom["weights"],
        "n_images": custom["n_images"],
        "cascade_images": custom["cascade_images"],
        "calibration_model": custom.get("calibration_model", "-"),
        "seeds": ", ".join(str(s) for s in custom["seeds"]),
        "layers": ", ".join(custom["layers_reinitialised"]),
        "steps": custom["steps"],
        "random_draws": custom["random_draws"],
        "baseline": custom["baseline"],
        "baseline_deletion": _interval(baseline["deletion_auc"]),
        "baseline_insertion": _interval(baseline["insertion_auc"]),
        "settings": ", ".join(f"{k} {v}" for k, v in custom["settings"].items()),
        "vgg19_weights": vgg["weights"],
        "vgg19_note": vgg["note"],
        "rows": rows,
        "best_deletion": best("deletion_auc", -1),
        "best_insertion": best("insertion_auc", 1),
        "least_randomization": min(compared, key=similarity) if compared else "-",
        "most_randomization": max(compared, key=similarity) if compared else "-",
        "benchmark_settings": {
            model: ", ".join(f"{k} {v}" for k, v in models[model].get("work", {}).items()) for model in models
        },
    }


def completeness_sentence(completeness: Mapping | None) -> str:
    """Integrated Gradients' completeness error over the compared images, in words ("" when not measured)."""
    if not completeness:
        return ""
    n = completeness["n"]
    return (
        f"Integrated Gradients with {completeness['steps']} steps: each map's attributions sum to its score change "
        f"within {100 * completeness['median_relative_error']:.1f}% (median over the {n} images; largest "
        f"{100 * completeness['max_relative_error']:.1f}%; {completeness['n_within_1_percent']} of {n} within 1%)."
    )


def _listing(names: Sequence[str]) -> str:
    return "none" if not names else names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def reduced_settings(custom: Mapping) -> str:
    """The settings below the methods' defaults that a method-comparison conclusion rests on, in words."""
    cost = custom["settings"]
    patch, stride = cost["occlusion_patch"], cost["occlusion_stride"]
    return (
        f"Score-CAM on each image's {cost['scorecam_channels']} largest-spread channels, occlusion with "
        f"{patch}-pixel patches at stride {stride}, Integrated Gradients with {cost['ig_steps']} steps, SmoothGrad "
        f"with {cost['smooth_samples']} samples, one trained network"
    )


def method_takeaways(summary: Mapping[str, Mapping], methods: Sequence[str], custom: Mapping) -> list[str]:
    """Four sentences from notebook 10's stored verdicts and paired differences, each naming the settings it rests
    on: which maps change under re-initialisation more than between two independently trained networks (the
    calibration; paired, Holm over the methods) and which do not, which beat the random baseline on both curves,
    which do both and whether any of those differ from each other (paired, Holm over the family), and which methods
    gave constant maps (counted apart)."""
    verdict = custom["verdicts"]
    survive, sensitive, beat, both = verdict["survive"], verdict["sensitive"], verdict["beat"], verdict["both"]
    seeds = ", ".join(str(s) for s in custom["seeds"])
    family = next(
        (
            summary[m]["randomization_vs_calibration"]["family_size"]
            for m in methods
            if summary[m].get("randomization_vs_calibration")
        ),
        0,
    )
    first = (
        f"Re-initialising every layer (on {custom['cascade_images']} images, seeds {seeds}), the maps of "
        f"{_listing(sensitive)} become less like the trained maps than those of the same architecture trained "
        f"independently ({custom.get('calibration_model', 'the calibration network')}) are (paired difference of "
        f"absolute rank correlations over the images, Wilcoxon with Holm over the {family} methods): they follow what "
        f"the network learned. {_listing(survive)} {'stays' if len(survive) == 1 else 'stay'} as similar as that "
        f"calibration or more: by this check {'its' if len(survive) == 1 else 'their'} maps do not tell the trained "
        f"network from a random one."
    )
    rest = [m for m in methods if m not in beat]
    second = (
        f"On all {custom['n_images']} test images, with reduced settings ({reduced_settings(custom)}), "
        f"{_listing(beat)} {'beats' if len(beat) == 1 else 'beat'} smooth random maps on both deletion and "
        f"insertion (95% intervals); {_listing(rest)} {'does' if len(rest) == 1 else 'do'} not."
    )
    if len(both) > 1:
        third = (
            f"Only {_listing(both)} pass both checks under these settings. Compared with each other on the same "
            f"images: {_differences(custom['method_differences'], custom['n_images'])}"
        )
    elif both:
        third = f"Only {both[0]} passes both checks under these settings."
    else:
        third = "No method passes both checks on this network under these settings: read every map with that caveat."
    constant = [
        f"{m} ({summary[m]['n_constant_trained']} trained, {summary[m]['n_constant_randomized']} re-initialised, "
        f"{summary[m].get('n_constant_calibration', 0)} calibration)"
        for m in methods
        if summary[m]["n_constant_trained"]
        or summary[m]["n_constant_randomized"]
        or summary[m].get("n_constant_calibration", 0)
    ]
    fourth = (
        f"Constant maps, which a rank correlation cannot score and which are counted apart: {_listing(constant)}."
        if constant
        else "No method gave a constant map."
    )
    return [first, second, third, fourth]


def _differences(rows: Sequence[Mapping], n_images: int) -> str:
    """Paired method-vs-method AUC differences in words: each with its interval and Holm p, then the verdict."""

    listed = "; ".join(
        f"{r['a']} - {r['b']} {r['curve']} AUC {num(r['difference'], 3, True)} "
        f"[{num(r['ci'][0], 3, True)}, {num(r['ci'][1], 3, True)}], {_holm_p(r)}"
        for r in rows
    )
    wins: dict[str, list[str]] = {}
    for r in rows:
        if r["distinguishable"]:
            winner = r["a"] if (r["difference"] < 0) == (r["curve"] == "deletion") else r["b"]
            loser = r["b"] if winner == r["a"] else r["a"]
            wins.setdefault(f"{winner} beats {loser}", []).append(r["curve"])
    verdict = "; ".join(f"{who} on {' and on '.join(curves)}" for who, curves in wins.items())
    undecided = sum(not r["distinguishable"] for r in rows)
    if not wins:
        verdict = "no difference is distinguishable, so these data do not rank them"
    elif undecided:
        verdict += f"; the other {undecided} comparison{'s are' if undecided > 1 else ' is'} not distinguishable"
    family = rows[0]["family_size"] if rows else 0
    return (
        f"{listed} (paired bootstrap over the {n_images} images, Wilcoxon signed-rank test, Holm over the {family} "
        f"comparisons): {verdict}."
    )
