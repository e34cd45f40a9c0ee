"""The results schema: one typed record per ``results/<name>.json``, declared once.

Every results file the notebooks write and the report reads is a frozen dataclass here: its fields are the file's
top-level keys, each with its type and meaning; ``NOTEBOOK`` names the notebook that writes it and ``COMPACT``
whether it is a large per-image record (written one line per top-level key). ``RECORDS`` maps each results name
to its record; ``cnnlib.store.artifacts`` reads its name -> notebook table from it, ``Outputs.write`` writes a
record, and ``check`` holds every payload written or read to its record's keys, so a file from older code, or a
writer that forgot a key, is a clear error naming the file, the keys and the notebook to rerun.

Nested values stay plain JSON (dicts, lists, numbers, strings): the library functions that compute them document
their shapes (named in each field's comment).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

CUSTOM_VARIANTS = ("arch1", "arch2", "arch2_transfer", "arch3", "arch3_transfer")

JSON = Any  # a JSON value: dict, list, str, int, float, bool or None


def doc(text: str):
    """A record field's meaning (shown in docs/results.md by ``schema_markdown``)."""
    return dataclasses.field(metadata={"doc": text})


class ResultsSchemaError(ValueError):
    """A results payload whose keys are not its record's (missing or unknown keys)."""


@dataclass(frozen=True, kw_only=True)
class Record:
    """A results file's top-level keys. Subclasses set ``NOTEBOOK`` (and ``COMPACT`` for per-image records)."""

    NOTEBOOK: ClassVar[str]
    COMPACT: ClassVar[bool] = False

    provenance: dict = doc("results.provenance(...): seed, split hash, package versions, profile, arithmetic")

    def payload(self) -> dict:
        """The JSON object to write: {field: value} (shallow; values are already plain JSON)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def keys(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]


def check(name: str, payload: Mapping, where: str) -> Mapping:
    """``payload`` if its top-level keys are exactly ``RECORDS[name]``'s fields; else ``ResultsSchemaError``.

    Args:
        name: the results name (``results/<name>.json``).
        payload: the JSON object written or read.
        where: the file (or "a payload for ...") named in the error.

    Raises:
        KeyError: ``name`` is not a results name.
        ResultsSchemaError: keys missing or unknown, with both lists and the notebook that writes the file.
    """
    record = RECORDS[name]
    expected, found = set(record.keys()), set(payload)
    if expected != found:
        missing, unknown = sorted(expected - found), sorted(found - expected)
        raise ResultsSchemaError(
            f"{where} does not match the results schema of {name!r} (cnnlib.store.schema.{record.__name__}): "
            f"missing keys {missing}, unknown keys {unknown}. If the file was written by older code, rerun "
            f"notebooks/{record.NOTEBOOK} (or `make report`)."
        )
    return payload


# --------------------------------------------------------------------------- 01-03: split and networks


@dataclass(frozen=True, kw_only=True)
class DataSplit(Record):
    NOTEBOOK: ClassVar[str] = "01_data_split.ipynb"
    classes: list[str] = doc("the class list, in label order")
    counts: dict = doc('{class: {"train", "val", "test", "total": int}}')
    split_sizes: dict = doc('{"train", "val", "test": images per class}')
    image_size: int = doc("pixels, square")
    resize_method: str = doc("how images were resized to image_size")
    images_verified: int = doc("images whose SHA-256 matched data/caltech101_sha256.txt")
    skipped_unreadable: list[str] = doc("paths left out (unreadable), with the reason")
    manifest: str = doc("the split manifest's path (data/splits/...)")


@dataclass(frozen=True, kw_only=True)
class CustomVariant(Record):
    NOTEBOOK: ClassVar[str] = "02_custom_architectures.ipynb"
    variant: str = doc("one of CUSTOM_VARIANTS")
    classes: list[str] = doc("the class list, in label order")
    metrics: dict = doc('stats.evaluation.evaluate: {split: {"accuracy", "ci95", "confusion", "correct", "n"}}')
    training: dict = doc("models.training record: architecture, epochs, history, settings")


@dataclass(frozen=True, kw_only=True)
class CustomSummary(Record):
    NOTEBOOK: ClassVar[str] = "02_custom_architectures.ipynb"
    best_by_val: str = doc("the custom network with the best validation accuracy")
    variants: list[str] = doc("the custom networks, in training order")
    tables: dict = doc("{architecture: architectures.feature_map_table rows}")


@dataclass(frozen=True, kw_only=True)
class Vgg19(Record):
    NOTEBOOK: ClassVar[str] = "03_vgg19.ipynb"
    variant: str = doc('"vgg19"')
    classes: list[str] = doc("the class list, in label order")
    metrics: dict = doc("as CustomVariant.metrics")
    training: dict = doc("the head's training record")
    weights: dict = doc("models.vgg19 weights: label, is_imagenet, source, path, sha256, seed")
    head: str = doc("the classifier head on the frozen base")
    preprocessing: str = doc("the input preprocessing")
    fine_tune_block5: bool = doc("whether block5 was fine-tuned")
    compared_with: str = doc("the best custom network")


# --------------------------------------------------------------------------- 04-07: interpretability figures


@dataclass(frozen=True, kw_only=True)
class FeatureMaps(Record):
    NOTEBOOK: ClassVar[str] = "04_feature_maps.ipynb"
    custom_model: str = doc("the best custom network")
    custom_layers: list[str] = doc("its layers shown")
    example_class: str = doc("the example image's class")
    image: str = doc("class/file of the example image")
    vgg19_layers: list[str] = doc("VGG19 layers shown")
    vgg19_channels_shown: int = doc("channels per VGG19 layer")
    vgg19_weights: dict = doc("as Vgg19.weights")


@dataclass(frozen=True, kw_only=True)
class Patches(Record):
    NOTEBOOK: ClassVar[str] = "05_max_activating_patches.ipynb"
    custom_model: str = doc("the best custom network")
    image: str = doc("class/file of the example image")
    argmax_custom: list = doc("interpret.patches rows: channel, activation, row, col, box (pixels)")
    argmax_custom_layer: str = doc("the layer of argmax_custom")
    argmax_vgg19: list = doc("as argmax_custom, for VGG19")
    argmax_vgg19_layer: str = doc("the layer of argmax_vgg19")
    top9_training_patches: dict = doc('{"model/layer": {channel: [[image, row, col], ...]}}')
    activation_maximisation: dict = doc(
        "model, layer, steps, seed, training_images and {channel: {activation, reference, ratio}}: "
        "interpret.maximise_channels for the custom network's top-9 channels, against their strongest training patch"
    )
    vgg19_weights: dict = doc("as Vgg19.weights")


@dataclass(frozen=True, kw_only=True)
class GuidedBackprop(Record):
    NOTEBOOK: ClassVar[str] = "06_guided_backprop.ipynb"
    custom_model: str = doc("the best custom network")
    custom_layer: str = doc("the layer whose neurons are explained")
    image: str = doc("class/file of the example image")
    feature_maps_1_based: list[int] = doc("the channels explained (1-based, as the reference)")
    custom_peak_activation: dict = doc("{channel (1-based): activation}")
    vgg19_layer: str = doc("VGG19's layer")
    vgg19_peak_activation: dict = doc("as custom_peak_activation, for VGG19")
    vgg19_weights: dict = doc("as Vgg19.weights")


@dataclass(frozen=True, kw_only=True)
class Gradcam(Record):
    NOTEBOOK: ClassVar[str] = "07_gradcam.ipynb"
    custom_model: str = doc("the best custom network")
    custom_layer: str = doc("its last convolution")
    example_class: str = doc("the example image's class")
    images: list[str] = doc("class/file of the images shown, one per class")
    targets: list[str] = doc("the target classes, one map each")
    score: str = doc("which score is differentiated (pre-softmax)")
    upsampling: str = doc("how maps are brought to image size: interpret.DEFAULT_UPSAMPLING, the benchmark's winner")
    vgg19_layer: str = doc("VGG19's layer")
    vgg19_weights: dict = doc("as Vgg19.weights")


# --------------------------------------------------------------------------- 08: repeated runs and statistics


@dataclass(frozen=True, kw_only=True)
class Predictions(Record):
    NOTEBOOK: ClassVar[str] = "08_statistics.ipynb"
    COMPACT: ClassVar[bool] = True
    what: str = doc("what the two maps hold, in words")
    seeds: dict = doc("{seed: {model: stats.experiments prediction record}}")
    splits: dict = doc("{split seed: {model: record}}")


@dataclass(frozen=True, kw_only=True)
class Statistics(Record):
    NOTEBOOK: ClassVar[str] = "08_statistics.ipynb"
    seeds: list[int] = doc("training seeds on the committed split")
    split_seeds: list[int] = doc("split seeds (training seed fixed)")
    seed_runs: list = doc("one row per (model, seed): train / val / test accuracy")
    split_runs: list = doc("as seed_runs, over the splits")
    seed_summary: dict = doc("{model: {split: t-interval}}")
    split_summary: dict = doc("as seed_summary, over the splits")
    best_by_val_per_seed: dict = doc("{run: pick, rule, score, tied}")
    best_by_val_per_split: dict = doc("as best_by_val_per_seed, over the splits")
    primary: dict = doc("the pre-specified primary comparison")
    comparisons: list = doc("the Holm family of paired comparisons (McNemar, Newcombe)")
    bootstrap: dict = doc("{comparison: {resampling: interval}}")
    n_boot: int = doc("bootstrap resamples")
    bootstrap_monte_carlo: dict = doc("the endpoints' Monte Carlo error")
    vgg19_weights: str = doc("the VGG19 base's weights, in words")
    vgg19_base: str = doc("how the base is drawn per seed")


# --------------------------------------------------------------------------- 09-10: checks on explanations


@dataclass(frozen=True, kw_only=True)
class SanityPerImage(Record):
    NOTEBOOK: ClassVar[str] = "09_sanity_checks.ipynb"
    COMPACT: ClassVar[bool] = True
    images: list[str] = doc("class/file of every test image, in order")
    layers_top_down: list[str] = doc("the cascade's order of re-initialisation")
    cascade: dict = doc("{method: interpret.checks.sanity.similarity_record}")
    calibration: dict = doc("as cascade, trained network against an independently trained one")
    data_randomization: dict = doc("as cascade, against a network trained on permuted labels")
    curves: dict = doc("{method: interpret.checks.faithfulness.curves_record}")
    rise_curves: dict = doc("as curves, with RISE's original substrates")


@dataclass(frozen=True, kw_only=True)
class Sanity(Record):
    NOTEBOOK: ClassVar[str] = "09_sanity_checks.ipynb"
    model: str = doc("the network checked")
    n_images: int = doc("test images used")
    layers_top_down: list[str] = doc("the cascade's order")
    randomization_seeds: list[int] = doc("re-initialisation seeds")
    cascading_randomization: dict = doc("{method: one summary per cascade step}")
    calibration: dict = doc('{"models": [two names], "similarity": {method: summary}}')
    data_randomization: dict = doc("{method: summary} against the permuted-label network")
    random_label_model_accuracy: dict = doc("the permuted-label network's accuracies")
    random_label_model_counts: dict = doc("their counts {correct, n}")
    faithfulness_auc: dict = doc("{method: deletion / insertion AUC}")
    faithfulness_differences: list = doc("paired differences from the random baseline")
    faithfulness_baseline: str = doc("the random baseline, in words")
    faithfulness_steps: int = doc("steps of each curve")
    faithfulness_images: int = doc("images per curve")
    random_draws: int = doc("random maps per image in the baseline")
    n_boot: int = doc("bootstrap resamples")
    rise_auc: dict = doc("as faithfulness_auc, RISE's substrates")
    rise_settings: dict = doc("RISE's substrates and blur")


@dataclass(frozen=True, kw_only=True)
class MethodComparisonPerImage(Record):
    NOTEBOOK: ClassVar[str] = "10_method_comparison.ipynb"
    COMPACT: ClassVar[bool] = True
    images: list[str] = doc("class/file of every test image, in order")
    custom: dict = doc('interpret.checks.comparison.compare_methods(...)["per_image"]')


@dataclass(frozen=True, kw_only=True)
class MethodComparison(Record):
    NOTEBOOK: ClassVar[str] = "10_method_comparison.ipynb"
    methods: list[str] = doc("the compared methods, in table order")
    n_boot: int = doc("bootstrap resamples")
    custom: dict = doc("the trained network: settings, verdicts.summarize rows, verdicts, differences, IG completeness")
    vgg19: dict = doc("model, weights, note (timed only)")


RECORDS: dict[str, type[Record]] = {
    "data_split": DataSplit,
    **{variant: CustomVariant for variant in CUSTOM_VARIANTS},
    "custom_summary": CustomSummary,
    "vgg19": Vgg19,
    "feature_maps": FeatureMaps,
    "patches": Patches,
    "guided_backprop": GuidedBackprop,
    "gradcam": Gradcam,
    "statistics": Statistics,
    "predictions": Predictions,
    "sanity": Sanity,
    "sanity_per_image": SanityPerImage,
    "method_comparison": MethodComparison,
    "method_comparison_per_image": MethodComparisonPerImage,
}


def schema_markdown() -> str:
    """The tables of ``docs/results.md``: per results file, the notebook that writes it and each key's type and
    meaning (``tests/test_readme.py`` compares them with the page)."""
    blocks = []
    for record in dict.fromkeys(RECORDS.values()):  # each record once, in RECORDS' order
        names = [name for name, cls in RECORDS.items() if cls is record]
        files = ", ".join(f"`results/{name}.json`" for name in names)
        rows = [f"### {record.__name__}: {files}", "", f"Written by `notebooks/{record.NOTEBOOK}`.", ""]
        rows += ["| key | type | meaning |", "|---|---|---|"]
        for f in dataclasses.fields(record):
            rows.append(f"| `{f.name}` | `{f.type}` | {f.metadata.get('doc', '')} |")
        blocks.append("\n".join(rows))
    return "\n\n".join(blocks) + "\n"


def name_of(record: Record) -> str:
    """The results name a record is written under (a custom variant: its ``variant``)."""
    if isinstance(record, CustomVariant):
        return record.variant
    names = [name for name, cls in RECORDS.items() if cls is type(record)]
    if len(names) != 1:
        raise KeyError(f"{type(record).__name__} is not a single results file in cnnlib.store.schema.RECORDS")
    return names[0]
