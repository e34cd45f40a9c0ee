"""The localisation benchmark's table and sentence (results/localisation.json, ``make localisation``): which CAM
upsampling rule puts the heat on the evidence. Pure functions of the stored dict, like ``tables``."""

from __future__ import annotations

from collections.abc import Mapping

from cnnlib.report.tables import pct, points


def localisation_rows(loc: Mapping, default: str) -> list[dict]:
    """The localisation benchmark's table (results/localisation.json "pooled"): one row per upsampling rule, its
    pointing-game accuracy and share of energy in the evidence box, each with its 95% interval."""
    pooled = loc["pooled"]
    return [
        {
            "upsampling": rule + (" (default)" if rule == default else ""),
            "pointing game": f"{pct(pooled['pointing'][rule]['mean'])} [{pct(pooled['pointing'][rule]['ci'][0])}, "
            f"{pct(pooled['pointing'][rule]['ci'][1])}]",
            "energy in box": f"{pct(pooled['energy'][rule]['mean'])} [{pct(pooled['energy'][rule]['ci'][0])}, "
            f"{pct(pooled['energy'][rule]['ci'][1])}]",
        }
        for rule in loc["methods"]
    ]


def per_architecture_rows(loc: Mapping) -> list[dict]:
    """One row per architecture: each rule's pointing game and energy in the box (means over its seeds x the images).
    The deeper the architecture, the further inside the image its outermost field centres lie (arch1 25 px, arch2 49,
    arch3 65 of 224), the more the rules differ."""
    rows = []
    for arch, summary in loc["per_architecture"].items():
        row = {"architecture": arch}
        for score, label in (("pointing", "pointing"), ("energy", "energy")):
            row.update({f"{label}: {rule}": pct(summary[score][rule]["mean"]) for rule in loc["methods"]})
        rows.append(row)
    return rows


def _versus(pooled: Mapping, score: str, best: str, other: str) -> tuple[float, list[float]]:
    """``best - other`` on ``score`` (mean difference, sorted 95% interval), whichever way the pair is stored."""
    stored = pooled["differences"][score]
    sign, key = (1, f"{best} - {other}") if f"{best} - {other}" in stored else (-1, f"{other} - {best}")
    return sign * stored[key]["difference"], sorted(sign * v for v in stored[key]["ci"])


def localisation_sentence(loc: Mapping) -> str:
    """The benchmark's finding in words: the winner's pointing game against each other rule, then what energy in the
    box says, each a paired difference in percentage points with its 95% interval over networks x images."""
    pooled, best, settings = loc["pooled"], loc["winner"], loc["settings"]
    others = [r for r in loc["methods"] if r != best]
    accuracies = [n["test_accuracy"] for n in loc["networks"] if n["scored"]]
    pointing = [(other, *_versus(pooled, "pointing", best, other)) for other in others]
    energy = [(other, *_versus(pooled, "energy", best, other)) for other in others]
    text = (
        f"On {pooled['images']} held-out marker images scored by {pooled['networks']} networks "
        f"({', '.join(settings['architectures'])}, {settings['seeds_per_architecture']} seeds each, valid padding; "
        f"test accuracy {pct(min(accuracies))}-{pct(max(accuracies))}), {best!r} points best: pointing game "
        f"({settings['pointing_tolerance']} px tolerance) {pct(pooled['pointing'][best]['mean'])}, "
        + ", ".join(f"{points(d, ci)} points against {other!r}" for other, d, ci in pointing)
        + " (paired differences, 95% intervals over networks x images)."
    )
    tied = [other for other, _, ci in pointing if ci[0] <= 0]
    if tied:
        text += f" On the pointing game it is not distinguishable from {', '.join(map(repr, tied))}."
    better = [(other, -d, [-ci[1], -ci[0]]) for other, d, ci in energy if ci[1] < 0]
    if better:
        text += (
            " "
            + "; ".join(
                f"{other!r} keeps more of the map's energy inside the box ({points(d, ci)} points)"
                for other, d, ci in better
            )
            + ", so the two scores disagree and the default follows the pointing game, the criterion fixed before "
            "the run."
        )
    else:
        text += " No other rule keeps significantly more of the map's energy inside the box."
    return text
