"""Paths, defaults (classes, split sizes, Table 2 settings, seed) and environment settings.

Every tunable default of the project lives here, so a notebook's parameters cell
and the tests read the same values. Environment variables:

- ``CNNLIB_DATA_DIR`` (alias ``CALTECH101_DIR``): folder holding ``<class>/<images>`` (or an
  official ``101_ObjectCategories`` folder). Checked first when locating the images.
- ``CNNLIB_CLASSES``: the class list of every notebook, the results and the report:
  comma-separated folder names (``brain,ketch,...``) or ``all`` (every class folder found).
  Unset: the reference's five classes. Papermill's ``-p CLASSES ...`` overrides it.
- ``CNNLIB_OUTPUT_DIR``: where runs on another class list write (default ``<repo>/outputs``;
  see ``cnnlib.artifacts``).
- ``CNNLIB_PROFILE``: ``full`` (default; what CI and the committed outputs use)
  or ``smoke`` (a few epochs, for a quick developer check).
- ``CNNLIB_CACHE_DIR``: where decoded images, features, trained models and memoised results are
  cached (default ``<repo>/.cache``).
- ``CNNLIB_MEMO``: ``0`` recomputes every ``cnnlib.memo`` result instead of reading it back (default on).
- ``CNNLIB_NOTEBOOK_JOBS``: notebooks ``make notebooks`` runs at once after 01-03 (default 2).
- ``CNNLIB_VGG19_WEIGHTS``: VGG19 weights (see ``cnnlib.vgg19``).
- ``CNNLIB_SKIP_BAD_IMAGES``: ``1`` leaves bad images (unreadable; official files that are
  missing or altered; files that are not official) out of the split instead of stopping
  (see ``cnnlib.images.check_images``).
- ``CNNLIB_ALLOW_EXTRA_IMAGES``: ``1`` lets images that are not official Caltech-101 files into
  the split of a reference class (a user's own additions); by default they stop the run.

A variable that is set must have a valid value: an empty or unknown value raises
``SettingError`` naming the variable and the allowed values (unset means the default).
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
# Notebook 08's repeats (its parameters' defaults; cnnlib.idle_lane trains the same runs ahead of it).
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


_TRUE, _FALSE = ("1", "true", "yes"), ("0", "false", "no")


def env_setting(name: str, env: Mapping[str, str] | None = None) -> str | None:
    """Value of environment variable ``name`` (stripped), None when unset; set but empty is an error."""
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
    raise SettingError(
        f"{name}={value!r} is not a valid value; use one of {', '.join(_TRUE + _FALSE)}, or unset it (= no)."
    )


def memo_enabled(env: Mapping[str, str] | None = None) -> bool:
    """``CNNLIB_MEMO``: read deterministic results back from the cache (``cnnlib.memo``); unset means yes."""
    return env_setting("CNNLIB_MEMO", env) is None or env_flag("CNNLIB_MEMO", env)


def notebook_jobs(env: Mapping[str, str] | None = None) -> int:
    """``CNNLIB_NOTEBOOK_JOBS``: notebooks run at once after 01-03 by ``cnnlib.notebooks`` (default 2)."""
    value = env_setting("CNNLIB_NOTEBOOK_JOBS", env)
    if value is None:
        return 2
    if not value.isdigit() or int(value) < 1:
        raise SettingError(
            f"CNNLIB_NOTEBOOK_JOBS={value!r} is not a valid value; use a whole number >= 1, or unset it (= 2)."
        )
    return int(value)


def profile_name(env: Mapping[str, str] | None = None) -> str:
    """The active profile, from ``CNNLIB_PROFILE`` (unset: ``full``; empty or unknown: ``SettingError``)."""
    value = env_setting("CNNLIB_PROFILE", env)
    name = "full" if value is None else value.lower()
    if name not in PROFILES:
        raise SettingError(
            f"CNNLIB_PROFILE={value!r} is not a known profile; use one of {sorted(PROFILES)}, or unset it (= full)."
        )
    return name


def train_settings(profile: str | None = None) -> TrainSettings:
    """Training settings of a profile (default: the active one)."""
    return PROFILES[profile or profile_name()]


def cache_dir(env: Mapping[str, str] | None = None) -> Path:
    """Folder for caches that are never committed (decoded images, features, models).

    ``CNNLIB_CACHE_DIR`` (default ``<repo>/.cache``); set but empty is a ``SettingError``,
    never the current folder.
    """
    value = env_setting("CNNLIB_CACHE_DIR", env)
    return REPO_ROOT / ".cache" if value is None else Path(value).expanduser()


def classes_setting(env: Mapping[str, str] | None = None) -> list[str] | str:
    """The class list from ``CNNLIB_CLASSES``: a list of names, ``"all"``, or the reference's five.

    ``"all"`` is resolved against the image folder by ``cnnlib.data.resolve_classes``.
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
