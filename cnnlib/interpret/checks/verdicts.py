"""What the method comparison's records say: summary rows with intervals, and which method passes which check.

``summarize`` turns ``comparison.compare_methods``' per-image record (or the stored one) into one row per method:
similarity after re-initialisation and against the calibration network, deletion and insertion AUC, differences from
the random baseline, constant maps. ``decide`` is the one place a method is said to pass or fail; ``method_differences``
compares the methods that pass both checks with each other, as one Holm family.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from cnnlib.interpret.checks import faithfulness
from cnnlib.stats import bootstrap

CURVES = ("deletion", "insertion")  # lower AUC is better on deletion, higher on insertion


def _mean_interval(values: np.ndarray, n_boot: int, seed: int) -> dict:
    """Mean of per-image values (NaN left out) and its bootstrap 95% interval over images."""
    v = np.asarray(values, float)
    v = v[~np.isnan(v)]
    if len(v) < 2:
        return {"mean": float(v.mean()) if len(v) else None, "ci": None, "n": int(len(v))}
    result = bootstrap.paired_bootstrap(v, np.zeros_like(v), n_boot, seed)
    return {"mean": result["difference"], "ci": result["ci"], "n": int(len(v))}


def summarize(record: Mapping, n_boot: int = 2_000, seed: int = 0) -> dict:
    """The summary table from a per-image record (``comparison.compare_methods(...)["per_image"]``): one row per method.

    Row: "randomization_spearman_abs" / "randomization_spearman" / "randomization_ssim" at full re-initialisation
    ({"mean", "ci", "n"}; per image the mean over seeds, images whose maps were constant for every seed left out),
    "n_constant_randomized" (seed x image pairs) and "n_constant_trained", "deletion_auc" / "insertion_auc"
    ({"mean", "ci", "n"}), "deletion_vs_random" / "insertion_vs_random" (paired bootstrap of AUC(method) -
    AUC(random baseline)). With a calibration in the record (``comparison.compare_methods(calibration_model=...)``) also
    "calibration_spearman_abs" ({"mean", "ci", "n"}: the trained maps against an independently trained network's),
    "n_constant_calibration" and "randomization_vs_calibration": per image |Spearman| after re-initialisation
    minus the calibration's, on the images where both are defined, as one ``bootstrap.paired_score_family`` over
    the methods (difference, ci, Wilcoxon p, Holm p, distinguishable, "n"). Timings are not part of it (they differ
    from run to run).
    """
    baseline = record["baseline"]
    base_auc = {
        kind: faithfulness.auc_per_image(record["curves"][baseline][kind]) for kind in ("deletion", "insertion")
    }
    rows, randomized = {}, {}
    for name in record["methods"]:
        cascade = record["cascade"][name]
        row = {}
        for key in ("spearman_abs", "spearman", "ssim"):
            full = np.array(cascade[key], float)[:, -1]  # (seeds, N) at full re-initialisation; None -> NaN
            counted = (~np.isnan(full)).sum(axis=0)
            per_image = np.where(counted > 0, np.nansum(full, axis=0) / np.maximum(counted, 1), np.nan)
            row[f"randomization_{key}"] = _mean_interval(per_image, n_boot, seed)
            randomized.setdefault(name, per_image)  # spearman_abs, the measure the verdicts use
        row["n_constant_randomized"] = int(np.sum(np.asarray(cascade["constant_randomized"], bool)[:, -1]))
        row["n_constant_trained"] = int(np.sum(cascade["constant_trained"]))
        for kind in ("deletion", "insertion"):
            auc = faithfulness.auc_per_image(record["curves"][name][kind])
            row[f"{kind}_auc"] = _mean_interval(auc, n_boot, seed)
            row[f"{kind}_vs_random"] = bootstrap.paired_bootstrap(auc, base_auc[kind], n_boot, seed)
        rows[name] = row
    if "calibration" in record:
        _add_calibration(rows, randomized, record["calibration"], n_boot, seed)
    rows[baseline] = {f"{kind}_auc": _mean_interval(base_auc[kind], n_boot, seed) for kind in ("deletion", "insertion")}
    return rows


def _add_calibration(
    rows: dict, randomized: Mapping[str, np.ndarray], calibration: Mapping[str, Mapping], n_boot: int, seed: int
) -> None:
    """``summarize``'s calibration columns, in place: the calibration's |Spearman| per method, and re-initialised
    minus calibration per image as one paired family over the methods (images where either is undefined left out)."""
    family = []
    for name, row in rows.items():
        reference = np.array([np.nan if v is None else v for v in calibration[name]["spearman_abs"]], float)
        row["calibration_spearman_abs"] = _mean_interval(reference, n_boot, seed)
        row["n_constant_calibration"] = int(np.sum(calibration[name]["constant_other"]))
        both = ~(np.isnan(randomized[name]) | np.isnan(reference))
        if both.sum() >= 2:
            family.append((name, randomized[name][both], reference[both]))
    for (name, a, _), result in zip(family, bootstrap.paired_score_family(family, n_boot, seed)):
        rows[name]["randomization_vs_calibration"] = {**result, "n": int(len(a))}


def decide(summary: Mapping[str, Mapping], methods: Sequence[str]) -> dict:
    """Which methods pass which check, from ``summarize``'s rows (the one place this is decided).

    Randomisation is read against the calibration (two independently trained networks), not a fixed threshold:
    a map that depends on what the network learned should be less like the trained map once every layer is
    re-initialised than another trained network's map is.

    Returns {"sensitive": the re-initialised maps are less similar to the trained maps than the calibration
    network's (paired difference below 0, Holm-adjusted Wilcoxon p below 0.05 over the methods), "survive":
    compared and not sensitive (as similar as a second trained network's maps, or more: the check cannot tell
    the trained network from a random one), "beat": the method beats the random baseline on deletion and on
    insertion (both paired intervals exclude 0 in its favour), "both": sensitive and beat}; each a list of names
    in ``methods`` order. Methods without a calibration row are in neither randomisation list.
    """

    def against_calibration(m: str) -> Mapping | None:
        return summary[m].get("randomization_vs_calibration")

    compared = [m for m in methods if against_calibration(m)]
    sensitive = [
        m for m in compared if against_calibration(m)["distinguishable"] and against_calibration(m)["difference"] < 0
    ]
    survive = [m for m in compared if m not in sensitive]
    beat = [
        m
        for m in methods
        if summary[m]["deletion_vs_random"]["ci"][1] < 0 and summary[m]["insertion_vs_random"]["ci"][0] > 0
    ]
    return {"survive": survive, "sensitive": sensitive, "beat": beat, "both": [m for m in sensitive if m in beat]}


def method_differences(record: Mapping, methods: Sequence[str], n_boot: int = 10_000, seed: int = 0) -> list[dict]:
    """Every pair of ``methods`` compared on the same images, deletion and insertion AUC, as one Holm family.

    Args:
        record: ``comparison.compare_methods(...)["per_image"]`` (or the stored record).
        methods: the methods the conclusion is about (e.g. ``decide(...)["both"]``).
        n_boot, seed: the paired bootstrap over images.

    Returns:
        ``bootstrap.paired_score_family`` rows (difference A - B of per-image AUCs, interval, Wilcoxon p, Holm p
        over the 2 x pairs comparisons, "distinguishable"), each with "a", "b" and "curve" added; [] for fewer
        than two methods.
    """
    aucs = {(m, kind): faithfulness.auc_per_image(record["curves"][m][kind]) for m in methods for kind in CURVES}
    pairs = [(a, b, kind) for i, a in enumerate(methods) for b in methods[i + 1 :] for kind in CURVES]
    rows = bootstrap.paired_score_family(
        [(f"{a} - {b} ({kind})", aucs[a, kind], aucs[b, kind]) for a, b, kind in pairs], n_boot, seed
    )
    return [{"a": a, "b": b, "curve": kind, **row} for (a, b, kind), row in zip(pairs, rows)]
