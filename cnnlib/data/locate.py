"""Where the images are and which classes a run uses: the image-folder setting, the folder that holds every
class (or the official archive, downloaded when nothing is found), and class lists ("all", named lists).

Nothing here reads an image or writes into the dataset folder; ``dataset`` lists and verifies the files and draws
the split.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

from cnnlib import config
from cnnlib.data.checksums import DatasetError, read_checksums
from cnnlib.data.download import download_caltech101

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def _class_root(folder: Path, classes: Sequence[str]) -> Path | None:
    """``folder`` or its ``101_ObjectCategories`` child, whichever holds all class folders."""
    for candidate in (folder, folder / "101_ObjectCategories"):
        if all((candidate / c).is_dir() for c in classes):
            return candidate
    return None


DATA_DIR_SETTINGS = ("CNNLIB_DATA_DIR", "CALTECH101_DIR")  # the second is an alias of the first
EXCLUDED_CLASS_FOLDERS = ("BACKGROUND_Google",)  # Caltech-101's clutter folder is not a category


def data_dir_setting(env: Mapping[str, str] | None = None) -> tuple[str, str] | None:
    """(variable, value) of the image-folder setting, ``CNNLIB_DATA_DIR`` or its alias; None if unset.

    Both set to different folders is a ``SettingError`` (which one was meant is unknowable).
    """
    found = [(name, value) for name in DATA_DIR_SETTINGS if (value := config.env_setting(name, env)) is not None]
    if len(found) == 2 and Path(found[0][1]).expanduser() != Path(found[1][1]).expanduser():
        raise config.SettingError(
            f"CNNLIB_DATA_DIR={found[0][1]!r} and CALTECH101_DIR={found[1][1]!r} disagree; "
            "set only one (CALTECH101_DIR is an alias of CNNLIB_DATA_DIR)."
        )
    return found[0] if found else None


def find_dataset(
    classes: Sequence[str] = config.CLASSES,
    env: Mapping[str, str] | None = None,
    raw_dir: Path = config.RAW_DIR,
) -> Path | None:
    """Folder holding ``<class>/`` sub-folders: ``$CNNLIB_DATA_DIR`` (or ``$CALTECH101_DIR``) first,
    then ``data/raw/``.

    Returns None when neither holds the images. Raises ``DatasetError`` when the setting is
    set but wrong, since silently downloading instead would hide the user's mistake.
    """
    setting = data_dir_setting(env)  # set but empty: SettingError, never a download
    if setting is not None:
        variable, value = setting
        folder = Path(value).expanduser()
        if not folder.is_dir():
            raise DatasetError(
                f"{variable}={value!r} is not a folder. Point it at a folder holding "
                f"one sub-folder per class ({', '.join(classes)}), or unset it to use data/raw/ "
                "or the automatic download."
            )
        root = _class_root(folder, classes)
        if root is None:
            missing = [c for c in classes if not (folder / c).is_dir()]
            raise DatasetError(
                f"{variable}={str(folder)!r} lacks the class folder(s) {missing}. Each class "
                f"needs a sub-folder of images (e.g. {folder / missing[0] / 'image_0001.jpg'}), "
                "either directly or under 101_ObjectCategories/."
            )
        return root
    return _class_root(Path(raw_dir), classes)


def class_folders(folder: Path) -> list[str]:
    """Sorted names of the sub-folders of ``folder`` holding at least one image (clutter excluded)."""
    folder = Path(folder)
    if (folder / "101_ObjectCategories").is_dir():
        folder = folder / "101_ObjectCategories"
    return sorted(
        d.name
        for d in folder.iterdir()
        if d.is_dir()
        and d.name not in EXCLUDED_CLASS_FOLDERS
        and any(f.suffix.lower() in IMAGE_SUFFIXES for f in d.iterdir())
    )


def _warn_nested_only(folder: Path) -> None:
    """Warn, naming them, about sub-folders of ``folder`` left out of ``all`` because their images sit only in
    deeper folders (a class is a folder of images, never a folder of folders)."""
    folder = Path(folder)
    if (folder / "101_ObjectCategories").is_dir():
        folder = folder / "101_ObjectCategories"
    nested = {
        d.name: n
        for d in sorted(folder.iterdir())
        if d.is_dir()
        and d.name not in EXCLUDED_CLASS_FOLDERS
        and not any(f.suffix.lower() in IMAGE_SUFFIXES for f in d.iterdir())
        and (n := sum(f.suffix.lower() in IMAGE_SUFFIXES for f in d.rglob("*")))
    }
    if nested:
        listed = ", ".join(f"{name} ({n} images in sub-folders)" for name, n in nested.items())
        warnings.warn(
            f"CNNLIB_CLASSES=all leaves out {len(nested)} folder(s) of {folder} whose images sit only in "
            f"sub-folders: {listed}. Move the images up into the class folder to include it.",
            stacklevel=3,
        )


def resolve_classes(
    classes: str | Sequence[str], env: Mapping[str, str] | None = None, raw_dir: Path = config.RAW_DIR
) -> tuple[str, ...]:
    """A class list from a notebook parameter: names, ``"a,b,c"`` (papermill), or ``"all"``.

    ``"all"`` means every class folder of the image folder (``CNNLIB_DATA_DIR``, else
    ``data/raw/``); with no folder yet, every official Caltech-101 category (then downloaded).
    """
    if isinstance(classes, str) and classes.strip().lower() == "all":
        setting = data_dir_setting(env)
        folder = Path(setting[1]).expanduser() if setting else Path(raw_dir)
        if folder.is_dir() and (names := class_folders(folder)):
            _warn_nested_only(folder)
            if len(names) < 2:
                raise config.SettingError(
                    f"CNNLIB_CLASSES=all found {len(names)} class folder with images in {folder} ({names[0]}); "
                    "a classifier needs at least two classes: add class folders or name the classes."
                )
            return tuple(names)
        if setting is not None:
            raise DatasetError(f"{setting[0]}={setting[1]!r} holds no class folders with images.")
        official = sorted({p.split("/")[0] for p in read_checksums()} - set(EXCLUDED_CLASS_FOLDERS))
        return tuple(official)
    return tuple(config.parse_classes(classes))


def ensure_dataset(classes: Sequence[str] = config.CLASSES, raw_dir: Path = config.RAW_DIR) -> Path:
    """``find_dataset``, or download the official archive into ``raw_dir`` and return its folder."""
    root = find_dataset(classes, raw_dir=raw_dir)
    if root is not None:
        return root
    return download_caltech101(raw_dir, classes=classes)


# --------------------------------------------------------------------------- split
