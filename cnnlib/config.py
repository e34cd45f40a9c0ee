"""Paths, defaults (classes, split sizes, Table 2 settings, seed) and the environment settings.

Every tunable default of the project lives here, so a notebook's parameters cell and the tests read the same
values. The ``CNNLIB_*`` environment settings are declared once, in ``SETTINGS`` (name, default, allowed values,
effect): the error for an invalid value and the table in ``docs/settings.md`` (``settings_markdown``) are made
from it, and reading an undeclared setting is an error. A variable that is set must have a valid value: an
empty or unknown value raises ``SettingError`` naming the variable and the allowed values (unset means the
default).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = REPO_ROOT / "data"
RAW_DIR = DATA_DIR / "raw"
SPLITS_DIR = DATA_DIR / "splits"
CHECKSUMS_FILE = DATA_DIR / "caltech101_sha256.txt"
FIGURES_DIR = REPO_ROOT / "figures"
RESULTS_DIR = REPO_ROOT / "results"

CLASSES: tuple[str, ...] = ("car_side", "hawksbill", "kangaroo", "scorpion", "starfish")
EXAMPLE_CLASS = "scorpion"  # the reference's example image class (used when it is in the class list)
SPLIT_SIZES: dict[str, int] = {"train": 50, "val": 10, "test": 20}  # images per class
SPLITS: tuple[str, ...] = tuple(SPLIT_SIZES)
SEED = 42
# Notebook 08's repeats (its parameters' defaults).
STATISTICS_SEEDS: tuple[int, ...] = (42, 43, 44, 45, 46)  # training seeds on the committed split
SPLIT_SEEDS: tuple[int, ...] = (42, 1, 2)  # split seeds, each trained with SEED
IMAGE_SIZE = 224  # pixels, square

# Official Caltech-101 archive (CaltechDATA record mzrjq-6wc02, CC BY 4.0).
CALTECH101_URL = "https://data.caltech.edu/records/mzrjq-6wc02/files/caltech-101.zip?download=1"
CALTECH101_ZIP_SHA256 = "331234750fc7f77520e50d9565e8b6907b03565e30320da1401130db08c61f91"
CALTECH101_TAR_MEMBER = "caltech-101/101_ObjectCategories.tar.gz"
CALTECH101_TAR_MD5 = "b224c7392d521a49829488ab0f1120d9"


@dataclass(frozen=True)
class TrainSettings:
    """Table 2 of the reference, plus what it leaves unsaid (patience, epoch cap)."""

    learning_rate: float = 1e-3  # Adam
    batch_size: int = 32
    max_epochs: int = 100  # cap; early stopping usually ends far sooner
    patience: int = 10  # epochs without val-loss improvement before stopping
    monitor: str = "val_loss"  # best weights (lowest val loss) are restored


PROFILES: dict[str, TrainSettings] = {
    "full": TrainSettings(),
    "smoke": replace(TrainSettings(), max_epochs=3, patience=2),
}


class SettingError(ValueError):
    """An environment setting has an empty or unknown value; the message names it and the allowed values."""


@dataclass(frozen=True)
class Setting:
    """One environment setting.

    Attributes:
        name: the variable, ``CNNLIB_...``.
        default: what unset means, as a user reads it.
        allowed: the valid values, as the error message and ``docs/settings.md`` say them.
        effect: what it changes (one sentence or two; Markdown).
        alias: another name for the same setting, or None.
    """

    name: str
    default: str
    allowed: str
    effect: str
    alias: str | None = None


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "CNNLIB_DATA_DIR",
        "`data/raw/`, else the official archive is downloaded there",
        "a folder of `<class>/<images>` (or an official `101_ObjectCategories` folder)",
        "where the images are (see [where the images come from](data.md#where-the-images-come-from), and "
        "[your own images](data.md#use-it-on-your-own-images))",
        alias="CALTECH101_DIR",
    ),
    Setting(
        "CNNLIB_CLASSES",
        "the reference's five classes",
        "comma-separated class folder names (at least two), or `all`",
        'the class list of every notebook, the results and the report; papermill\'s `-p CLASSES "a,b"` overrides it',
    ),
    Setting(
        "CNNLIB_OUTPUT_DIR",
        "`outputs/`",
        "a folder",
        "where a run on another class list writes its executed notebooks, results, figures, split and PDF, under "
        "`<folder>/<label>/` (never committed; the label names the classes)",
    ),
    Setting(
        "CNNLIB_PROFILE",
        "`full`",
        "`full` or `smoke`",
        "`full`: CI and the committed outputs; `smoke`: 3 epochs, a quick check that overwrites `results/` and "
        '`figures/` with outputs labelled `"profile": "smoke"` (restore them with `git checkout results '
        "figures`)",
    ),
    Setting(
        "CNNLIB_VGG19_WEIGHTS",
        "Keras's ImageNet weights (downloaded once)",
        "the path of the ImageNet notop `.h5` file, or `random` (the labelled fallback)",
        "the VGG19 weights (see [VGG19 weights](data.md#vgg19-weights-which-ones-and-how-you-can-tell))",
    ),
    Setting(
        "CNNLIB_CACHE_DIR",
        "`.cache/`",
        "a folder",
        "cache for decoded images, VGG19 features, trained models and memoised results (`make clean-cache` empties it)",
    ),
    Setting(
        "CNNLIB_MEMO",
        "on",
        "one of 1, true, yes, 0, false, no",
        "`0`: recompute every result `cnnlib.store.memo` would read back (its key covers the code, inputs, "
        "weights and versions)",
    ),
    Setting(
        "CNNLIB_ARITHMETIC",
        "`pinned`",
        "`pinned` (the same trained networks on every x86-64 CPU) or `native` (the CPU's fastest kernels)",
        "`pinned`: the same kernels and thread split on any x86-64 CPU with AVX2, so the same trained networks "
        "(VGG19 activations within tolerance; see [Same numbers on any CPU](reproducibility.md)); `native`: "
        "TensorFlow's own kernels and every core, faster on big machines, numbers of that machine only (recorded "
        "in every results file)",
    ),
    Setting(
        "CNNLIB_NOTEBOOK_JOBS",
        "2",
        "a whole number >= 1",
        "notebooks `make notebooks` runs at once after 01-03 (`1` runs them one by one, with the same files)",
    ),
    Setting(
        "CNNLIB_SKIP_BAD_IMAGES",
        "no",
        "one of 1, true, yes, 0, false, no",
        "`1`: leave unreadable, damaged or unofficial images out and count them; otherwise the run stops and "
        "lists every one",
    ),
    Setting(
        "CNNLIB_ALLOW_EXTRA_IMAGES",
        "no",
        "one of 1, true, yes, 0, false, no",
        "`1`: accept image files in the reference classes that are not official Caltech-101 files (listed in a "
        "warning)",
    ),
    Setting(
        "CNNLIB_ANNOTATIONS_DIR",
        "unset: no Caltech-101 outlines",
        "the official `Annotations` folder (from `Annotations.tar`)",
        "notebook 07 also scores the upsampling rules on the test images' annotated object boxes (the localisation "
        "benchmark on the reference networks; see [results](results.md))",
    ),
)


def setting(name: str) -> Setting:
    """The declaration of ``name`` (or of the setting it is an alias of); KeyError for an undeclared one."""
    for declared in SETTINGS:
        if name in (declared.name, declared.alias):
            return declared
    raise KeyError(f"{name} is not a declared setting; declare it in cnnlib.config.SETTINGS.")


def invalid(name: str, value: str) -> SettingError:
    """The error for ``name=value``: the allowed values and the default, from the setting's declaration."""
    declared = setting(name)
    allowed = declared.allowed.replace("`", "")
    return SettingError(
        f"{name}={value!r} is not a valid value; use {allowed}, or unset it (= {declared.default.replace('`', '')})."
    )


def settings_markdown() -> str:
    """The settings table of ``docs/settings.md``: one row per setting (``tests/test_readme.py`` compares them)."""
    rows = ["| variable | unset | allowed | effect |", "|---|---|---|---|"]
    for s in SETTINGS:
        name = f"`{s.name}`" + (f" (alias `{s.alias}`)" if s.alias else "")
        rows.append(f"| {name} | {s.default} | {s.allowed} | {s.effect} |")
    return "\n".join(rows)


_TRUE, _FALSE = ("1", "true", "yes"), ("0", "false", "no")


def env_setting(name: str, env: Mapping[str, str] | None = None) -> str | None:
    """Value of the declared setting ``name`` (stripped), None when unset; set but empty is an error."""
    setting(name)  # KeyError for an undeclared setting: each one is declared once, in SETTINGS
    env = os.environ if env is None else env
    if name not in env:
        return None
    value = env[name].strip()
    if not value:
        raise SettingError(
            f"{name} is set but empty. Give it a value, or unset it (`unset {name}`) to use the default."
        )
    return value


def env_flag(name: str, env: Mapping[str, str] | None = None) -> bool:
    """A yes/no setting: unset -> False; 1/true/yes -> True; 0/false/no -> False; anything else is an error."""
    value = env_setting(name, env)
    if value is None or value.lower() in _FALSE:
        return False
    if value.lower() in _TRUE:
        return True
    raise invalid(name, value)


def memo_enabled(env: Mapping[str, str] | None = None) -> bool:
    """``CNNLIB_MEMO``: read deterministic results back from the cache (``cnnlib.store.memo``); unset means yes."""
    return env_setting("CNNLIB_MEMO", env) is None or env_flag("CNNLIB_MEMO", env)


def notebook_jobs(env: Mapping[str, str] | None = None) -> int:
    """``CNNLIB_NOTEBOOK_JOBS``: notebooks run at once after 01-03 by ``cnnlib.run.notebooks`` (default 2)."""
    value = env_setting("CNNLIB_NOTEBOOK_JOBS", env)
    if value is None:
        return 2
    if not value.isdigit() or int(value) < 1:
        raise invalid("CNNLIB_NOTEBOOK_JOBS", value)
    return int(value)


def profile_name(env: Mapping[str, str] | None = None) -> str:
    """The active profile, from ``CNNLIB_PROFILE`` (unset: ``full``; empty or unknown: ``SettingError``)."""
    value = env_setting("CNNLIB_PROFILE", env)
    name = "full" if value is None else value.lower()
    if name not in PROFILES:
        raise invalid("CNNLIB_PROFILE", value)
    return name


def train_settings(profile: str | None = None) -> TrainSettings:
    """Training settings of a profile (default: the active one)."""
    return PROFILES[profile or profile_name()]


def annotations_dir(env: Mapping[str, str] | None = None) -> Path | None:
    """The Caltech-101 ``Annotations`` folder from ``CNNLIB_ANNOTATIONS_DIR``, or None when unset.

    Set to a folder that does not exist is a ``SettingError`` naming it."""
    value = env_setting("CNNLIB_ANNOTATIONS_DIR", env)
    if value is None:
        return None
    folder = Path(value).expanduser()
    if not folder.is_dir():
        raise SettingError(
            f"CNNLIB_ANNOTATIONS_DIR={value!r} is not a folder; point it at the official Annotations "
            "folder (from Annotations.tar), or unset it."
        )
    return folder


def cache_dir(env: Mapping[str, str] | None = None) -> Path:
    """Folder for caches that are never committed (decoded images, features, models).

    ``CNNLIB_CACHE_DIR`` (default ``<repo>/.cache``); set but empty is a ``SettingError``,
    never the current folder.
    """
    value = env_setting("CNNLIB_CACHE_DIR", env)
    return REPO_ROOT / ".cache" if value is None else Path(value).expanduser()


def classes_setting(env: Mapping[str, str] | None = None) -> list[str] | str:
    """The class list from ``CNNLIB_CLASSES``: a list of names, ``"all"``, or the reference's five.

    ``"all"`` is resolved against the image folder by ``cnnlib.data.locate.resolve_classes``.
    """
    value = env_setting("CNNLIB_CLASSES", env)
    if value is None:
        return list(CLASSES)
    if value.lower() == "all":
        return "all"
    return parse_classes(value, "CNNLIB_CLASSES")


def parse_classes(value: str | Sequence[str], source: str = "CLASSES") -> list[str]:
    """A class list from ``"a,b,c"`` or a sequence; duplicates or fewer than two classes are errors."""
    names = [c.strip() for c in value.split(",")] if isinstance(value, str) else [str(c).strip() for c in value]
    names = [c for c in names if c]
    repeated = sorted({c for c in names if names.count(c) > 1})
    if repeated:
        raise SettingError(f"{source} names {repeated} more than once; list each class once.")
    if len(names) < 2:
        raise SettingError(
            f"{source}={value!r} gives {len(names)} class(es); a classifier needs at least two "
            "(comma-separated folder names, or 'all')."
        )
    return names


def example_class(classes: Sequence[str], requested: str | None = None) -> str:
    """The class of the example image: ``requested``, else the reference's when present, else the first."""
    if requested is not None:
        if requested not in classes:
            raise SettingError(f"EXAMPLE_CLASS={requested!r} is not one of the classes {list(classes)}.")
        return requested
    return EXAMPLE_CLASS if EXAMPLE_CLASS in classes else classes[0]
