"""The setup every notebook after the first shares: classes, outputs, the split, trained models.

``start`` turns the parameters cell (seed, classes, profile, example class) into a ``Session``;
``trained_models`` loads (or, on a cold cache, trains) the best custom network and the VGG19
classifier that notebooks 04-07 and 09 explain.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cnnlib import config
from cnnlib.data import images, locate
from cnnlib.store import artifacts


@dataclass(frozen=True)
class Session:
    """One run's fixed choices and its split."""

    seed: int
    classes: tuple[str, ...]
    profile: str
    settings: config.TrainSettings
    outputs: artifacts.Outputs
    split: images.ProjectSplit
    example_class: str  # the class of the example image (the reference's "scorpion" by default)

    @property
    def example_index(self) -> int:
        """Index in the test split of the first test image (manifest order) of the example class."""
        return self.split.first_of_class("test", self.classes.index(self.example_class))

    @property
    def example_path(self) -> str:
        return self.split.path_of("test", self.example_index)

    @property
    def split_sizes(self) -> dict[str, int]:
        """Images per class and split, as notebook 01 drew them (50/10/20 for the reference)."""
        stored = self.read_results("data_split")["split_sizes"]  # JSON keys come back sorted: restore the order
        return {split: int(stored[split]) for split in config.SPLITS if split in stored}

    def read_results(self, name: str) -> dict:
        return self.outputs.read_results(name)

    def provenance(self, **extra) -> dict:
        from cnnlib.store.results import provenance

        return provenance(self.seed, self.split.split_hash, self.profile, **extra)


def start(
    classes: str | Sequence[str] = config.CLASSES,
    seed: int = config.SEED,
    profile: str | None = None,
    example_class: str | None = None,
) -> Session:
    """A ``Session`` from a notebook's parameters; reads the split notebook 01 wrote for these classes."""
    names = locate.resolve_classes(classes)
    profile = profile or config.profile_name()
    outputs = artifacts.outputs_for(names)
    # The reference's split must have exactly its 50/10/20 images per class; another class list may have been
    # split with other sizes in notebook 01 (every class still the same counts, which read_manifest checks).
    sizes = config.SPLIT_SIZES if not outputs.label else None
    split = images.load_project_split(seed, names, sizes=sizes, manifest=outputs.manifest_path(seed))
    return Session(
        seed, names, profile, config.train_settings(profile), outputs, split, config.example_class(names, example_class)
    )


@dataclass(frozen=True)
class TrainedModels:
    """The networks notebooks 04-07 explain, and the example image (uint8, (224, 224, 3))."""

    best: str  # name of the best custom variant by validation accuracy (notebook 02)
    custom: object  # keras.Model, the best custom network
    vgg: object  # cnnlib.models.vgg19.VGG19Run
    image: np.ndarray

    def __repr__(self) -> str:
        return f"best custom network: {self.best} | VGG19 weights: {self.vgg.weights.label}"


def trained_models(session: Session) -> TrainedModels:
    """The best custom network and the VGG19 classifier of ``session`` (from the cache when trained)."""
    from cnnlib.models import training, vgg19

    split = session.split
    best = session.read_results("custom_summary")["best_by_val"]
    custom, _ = training.train_with_sources(
        best, split.arrays, session.settings, session.seed, data_key=split.split_hash
    )
    vgg = vgg19.fit_classifier(split.arrays, split.split_hash, session.settings, session.seed, len(session.classes))
    return TrainedModels(best, custom, vgg, split.arrays["test"][0][session.example_index])
