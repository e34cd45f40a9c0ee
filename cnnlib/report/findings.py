"""The headline findings the README states, each computed from ``results/`` with its interval.

The README's "What it found" carries these sentences verbatim; ``tests/test_readme.py`` regenerates them from the
committed results and fails if the README says anything else, so the front page cannot drift from the numbers.

    python -m cnnlib.report.findings      (prints the sentences, to paste into the README after a regeneration)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from cnnlib import config
from cnnlib.report.localisation_tables import localisation_rows, localisation_sentence
from cnnlib.report.tables import p_value, points


def _accuracy(metrics: Mapping) -> str:
    """'69.0% [59.4, 77.2]': test accuracy with its Wilson interval, in percent."""
    test = metrics["test"]
    low, high = test["ci95"]
    return f"{100 * test['accuracy']:.1f}% [{100 * low:.1f}, {100 * high:.1f}]"


def _verdict(row: Mapping) -> str:
    """What a Holm-adjusted comparison supports, in words: a direction only where Holm rejects at 5%."""
    if not row["reject_holm"]:
        return "makes no difference this test can detect"
    return "helps" if row["difference"] > 0 else "hurts"


def headline(results: Mapping[str, Mapping], strong: Callable[[str], str] = lambda s: f"**{s}**") -> list[str]:
    """Three sentences: the best custom network, VGG19 against it (the primary comparison), transfer between
    the custom networks (a secondary one).

    Args:
        results: {name: results JSON} with ``custom_summary``, ``statistics``, ``vgg19`` and the best custom
            network's own file (e.g. ``arch1``).
        strong: how to set a phrase in bold (Markdown by default; the PDF passes its own).

    Returns:
        The sentences, in the order the README and the report's conclusions show them.
    """
    stats = results["statistics"]
    best = results["custom_summary"]["best_by_val"]
    seeds = stats["seed_summary"][best]["test"]
    primary, *secondary = stats["comparisons"]
    transfer = next(r for r in secondary if r["A"] == "arch3_transfer")
    over_seeds = stats["bootstrap"][f"{transfer['A']} - {transfer['B']}"]["seeds x images"]
    weights = results["vgg19"]["weights"]["label"]
    return [
        f"{strong(best)}, the best of the five custom networks by validation accuracy, classifies "
        f"{_accuracy(results[best]['metrics'])} of the {results[best]['metrics']['test']['n']} test images "
        f"correctly (Wilson 95% interval); over {seeds['n']} training seeds its test accuracy is "
        f"{100 * seeds['mean']:.1f}% +/- {100 * seeds['sd']:.1f}.",
        f"The VGG19 head reaches {_accuracy(results['vgg19']['metrics'])}, but with {strong(weights)} weights (no "
        f"ImageNet download here), so it tests a frozen random-feature base, not transfer learning. "
        f"{primary['A']} - {primary['B']}: {points(primary['difference'], primary['ci'])} points (Newcombe 95%), "
        f"McNemar p = {p_value(primary['p'])}, the pre-specified primary comparison.",
        f"Starting arch3 from arch2_transfer's trained weights {_verdict(transfer)}: "
        f"{transfer['A']} - {transfer['B']} = "
        f"{points(transfer['difference'], transfer['ci'])} points, Holm p = {p_value(transfer['p_holm'])} over the "
        f"{transfer['family_size']} secondary comparisons; over {over_seeds['seeds']} seeds and the images "
        f"{points(over_seeds['difference'], over_seeds['ci'])} (hierarchical bootstrap).",
    ]


def committed_headline() -> list[str]:
    """``headline`` of the committed ``results/`` (the reference classes)."""
    from cnnlib.store import artifacts

    outputs = artifacts.outputs_for(config.CLASSES)
    names = ("custom_summary", "statistics", "vgg19")
    results = {name: outputs.read_results(name) for name in names}
    best = results["custom_summary"]["best_by_val"]
    results[best] = outputs.read_results(best)
    return headline(results)


def localisation_markdown() -> str:
    """The README's upsampling block: the benchmark's table (Markdown) and its sentence, from the committed
    results/localisation.json (``make localisation``)."""
    import json

    loc = json.loads((config.RESULTS_DIR / "localisation.json").read_text())
    rows = localisation_rows(loc, loc["winner"])
    lines = ["| upsampling | pointing game | energy in box |", "|---|---|---|"]
    lines += [f"| {r['upsampling']} | {r['pointing game']} | {r['energy in box']} |" for r in rows]
    return "\n".join(lines) + "\n\n" + localisation_sentence(loc)


if __name__ == "__main__":
    import sys

    print(localisation_markdown() if "--localisation" in sys.argv else "\n\n".join(committed_headline()))
