"""Did a run reproduce the committed outputs? Compare two sets of outputs file by file, knowing what matters.

    python -m cnnlib.run.reproduction                     # the working tree against the last commit (HEAD)
    python -m cnnlib.run.reproduction --reference REV     # ... against another commit
    python -m cnnlib.run.reproduction --candidate DIR     # another checkout (e.g. a run under other arithmetic)

A rerun on the same machine gives the same bytes; under the pinned arithmetic (``cnnlib.arithmetic``) a rerun on
another x86-64 CPU trains the same networks, and its VGG19 activations differ in the last bits (measured: 4 of
67 files, at most 3.7e-6 relative). This comparison is for what can differ (another CPU model, native
arithmetic, another operating system, ARM, a GPU, another library build) and is what ``.ci/run`` checks. The
rules, per file type:

- **results JSON**: the same keys and list lengths; strings, booleans, ``null`` and integers (counts, picks,
  decisions, class names, epochs) identical; floats within ``RTOL`` relative (``ATOL`` absolute near zero).
  ``provenance.arithmetic`` describes how a run summed, not what it found: a difference there is shown, never
  counted.
- **figures** (PNG, JPEG): the same size; mean absolute pixel difference at most ``FIGURE_MEAN``, and in every
  ``TILE`` x ``TILE`` tile at most ``FIGURE_TILE`` (0-255 scale). A whole-image maximum would fail on one JPEG
  block that re-quantised; the tile mean still catches one changed panel of a grid.
- **notebooks**: the same cells and sources, and every text output identical (they print numbers at the
  precision a reader sees).
- **the PDF**: its text identical page by page (the inputs digest it prints is masked: it changes with any
  input byte); its images are the figures, compared above.
- **everything else** (split manifests, Typst sources): identical bytes.

A file only one side has is a difference. Every difference is printed with the file, the key path, both values
and their ratio; the exit status is 1 when any exceeds its tolerance.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cnnlib import config

COMPARED = ("results", "figures", "data/splits", "report", "notebooks")
# Tolerances, from measurement (README, "Same numbers on any CPU"). Floats: notebook 03 regenerated under a second
# arithmetic (TensorFlow's Eigen kernels instead of oneDNN's) moved its values by at most 2.6e-6 relative, and a
# VGG19 forward pass by 4.6e-6 (benchmarks/bench_arithmetic.py); RTOL leaves a factor of 200 above that and
# stays 13x below the smallest change of a result, one test image in 100 (0.77 -> 0.76: 1.3e-2).
RTOL = 1e-3  # relative, for floats in results JSON
ATOL = 1e-6  # absolute, for floats near zero (|value| below ATOL / RTOL)
# Figures: every pixel moved by up to 1 level and re-encoded as JPEG (worse than any re-rendering seen) gives a
# mean of at most 0.5 and tiles of at most 1.5; one inverted panel of a grid gives tiles above 100.
FIGURE_MEAN = 1.0  # mean |difference| over the whole image, 0-255 scale
FIGURE_TILE = 8.0  # mean |difference| in any TILE x TILE tile, 0-255 scale
TILE = 32
_NOT_COUNTED = (("provenance", "arithmetic"),)
_PDF_DIGEST = re.compile(r"(inputs SHA-256\s*)[0-9a-f]{16,64}")
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


@dataclass(frozen=True)
class Difference:
    """One difference: ``file``, ``where`` inside it (key path, cell, page), both values, their size, and
    whether it is within tolerance (shown, not counted)."""

    file: str
    where: str
    reference: str
    candidate: str
    size: str
    within: bool

    def line(self) -> str:
        verdict = "within tolerance" if self.within else "BEYOND TOLERANCE"
        at = f" {self.where}" if self.where else ""
        return f"{verdict}: {self.file}{at}: {self.reference} -> {self.candidate} ({self.size})"


# ---------------------------------------------------------------------------------------------- sources
class GitRevision:
    """The files of ``paths`` at a commit of the repository at ``root``."""

    def __init__(self, revision: str = "HEAD", root: Path = config.REPO_ROOT):
        self.root, self.revision = Path(root), revision
        self.label = f"{revision} ({_git(self.root, 'rev-parse', '--short', revision).strip()})"

    def files(self, paths: tuple[str, ...]) -> list[str]:
        return _git(self.root, "ls-tree", "-r", "--name-only", self.revision, "--", *paths).splitlines()

    def read(self, name: str) -> bytes:
        return subprocess.run(
            ["git", "-C", str(self.root), "show", f"{self.revision}:{name}"], capture_output=True, check=True
        ).stdout


class Folder:
    """The files of ``paths`` in a checkout as they are now: tracked or new, not ignored (deleted ones are
    listed and then missing); without git, every file under ``paths``."""

    def __init__(self, root: Path = config.REPO_ROOT):
        self.root = Path(root)
        self.label = f"{self.root} (as it is now)"

    def files(self, paths: tuple[str, ...]) -> list[str]:
        if (self.root / ".git").exists():
            listed = _git(self.root, "ls-files", "--cached", "--others", "--exclude-standard", "--", *paths)
            return sorted(set(listed.splitlines()))
        found = (p for top in paths for p in (self.root / top).rglob("*") if p.is_file())
        return sorted(p.relative_to(self.root).as_posix() for p in found)

    def read(self, name: str) -> bytes | None:
        path = self.root / name
        return path.read_bytes() if path.is_file() else None


def _git(root: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"git {' '.join(args)} failed in {root}: {done.stderr.strip()}")
    return done.stdout


# ---------------------------------------------------------------------------------------------- rules
def _float_size(a: float, b: float) -> tuple[str, bool]:
    if math.isnan(a) and math.isnan(b):
        return "both NaN", True
    scale = max(abs(a), abs(b))
    relative = abs(a - b) / scale if scale else 0.0
    within = abs(a - b) <= max(RTOL * scale, ATOL)
    ratio = f"ratio {b / a:.9g}" if a else "reference 0"
    return f"relative {relative:.2e}, {ratio}", within


def compare_json(reference: object, candidate: object, file: str, where: tuple = ()) -> Iterator[Difference]:
    """Differences between two parsed JSON values under the rules above (floats within ``RTOL``/``ATOL``)."""
    path = "/".join(map(str, where))
    if where[:2] in _NOT_COUNTED and reference != candidate:
        yield Difference(file, path, _short(reference), _short(candidate), "how the run summed", True)
        return
    if isinstance(reference, dict) and isinstance(candidate, dict):
        for key in sorted(set(reference) | set(candidate), key=str):
            if key not in candidate or key not in reference:
                shown = [_short(side[key]) if key in side else "(absent)" for side in (reference, candidate)]
                counted = (where + (key,))[:2] not in _NOT_COUNTED
                size = "a key only one side has" if counted else "how the run summed"
                yield Difference(file, f"{path}/{key}".lstrip("/"), *shown, size, not counted)
            else:
                yield from compare_json(reference[key], candidate[key], file, where + (key,))
    elif isinstance(reference, list) and isinstance(candidate, list):
        if len(reference) != len(candidate):
            yield Difference(file, path, f"{len(reference)} items", f"{len(candidate)} items", "length", False)
        else:
            for i, (a, b) in enumerate(zip(reference, candidate)):
                yield from compare_json(a, b, file, where + (i,))
    elif type(reference) is float and type(candidate) is float:
        if reference != candidate and not (math.isnan(reference) and math.isnan(candidate)):
            size, within = _float_size(reference, candidate)
            yield Difference(file, path, repr(reference), repr(candidate), size, within)
    elif reference != candidate or type(reference) is not type(candidate):
        yield Difference(file, path, _short(reference), _short(candidate), "must be identical", False)


def image_difference(reference: bytes, candidate: bytes) -> tuple[float, float, float]:
    """(mean, largest tile mean, maximum) absolute difference of two images' pixels, 0-255 scale.
    Raises ValueError when their sizes differ."""
    from PIL import Image

    a, b = (np.asarray(Image.open(io.BytesIO(x)).convert("RGBA"), dtype=np.float64) for x in (reference, candidate))
    if a.shape != b.shape:
        raise ValueError(f"size {a.shape[1]}x{a.shape[0]} vs {b.shape[1]}x{b.shape[0]}")
    diff = np.abs(a - b).mean(axis=2)  # per pixel, over channels
    h, w = diff.shape
    tiles = [diff[y : y + TILE, x : x + TILE].mean() for y in range(0, h, TILE) for x in range(0, w, TILE)]
    return float(diff.mean()), float(max(tiles)), float(diff.max())


def compare_image(reference: bytes, candidate: bytes, file: str) -> Iterator[Difference]:
    try:
        mean, tile, largest = image_difference(reference, candidate)
    except ValueError as error:
        yield Difference(file, "", "image", "image", str(error), False)
        return
    within = mean <= FIGURE_MEAN and tile <= FIGURE_TILE
    size = f"pixels: mean {mean:.3f}, worst {TILE}x{TILE} tile {tile:.2f}, max {largest:.0f} (0-255)"
    yield Difference(file, "", "image", "image", size, within)


def _notebook_cells(text: bytes) -> list[tuple[str, list[str]]]:
    cells = json.loads(text)["cells"]
    out = []
    for cell in cells:
        outputs = []
        for output in cell.get("outputs", []):
            if "text" in output:
                outputs.append("".join(output["text"]))
            for mime, value in sorted(output.get("data", {}).items()):
                outputs.append(f"{mime}: " + ("".join(value) if isinstance(value, list) else json.dumps(value)))
        out.append(("".join(cell["source"]), outputs))
    return out


def compare_notebook(reference: bytes, candidate: bytes, file: str) -> Iterator[Difference]:
    a, b = _notebook_cells(reference), _notebook_cells(candidate)
    if [s for s, _ in a] != [s for s, _ in b]:
        yield Difference(file, "cells", f"{len(a)} cells", f"{len(b)} cells", "sources differ", False)
        return
    for index, ((_, out_a), (_, out_b)) in enumerate(zip(a, b)):
        if out_a != out_b:
            first = next((i for i, (x, y) in enumerate(zip(out_a, out_b)) if x != y), min(len(out_a), len(out_b)))
            shown = [_first_difference(x, y) for x, y in zip(out_a[first:], out_b[first:])][:1] or [("", "")]
            yield Difference(file, f"cell {index} output", *shown[0], "printed output must be identical", False)


def pdf_text(pdf: bytes) -> list[str]:
    """Each page's text, with the printed inputs digest masked."""
    from pypdf import PdfReader

    return [_PDF_DIGEST.sub(r"\1<digest>", page.extract_text() or "") for page in PdfReader(io.BytesIO(pdf)).pages]


def compare_pdf(reference: bytes, candidate: bytes, file: str) -> Iterator[Difference]:
    a, b = pdf_text(reference), pdf_text(candidate)
    if len(a) != len(b):
        yield Difference(file, "pages", str(len(a)), str(len(b)), "page count must be identical", False)
        return
    for page, (x, y) in enumerate(zip(a, b), start=1):
        if x != y:
            yield Difference(file, f"page {page}", *_first_difference(x, y), "text must be identical", False)


def _first_difference(a: str, b: str, context: int = 40) -> tuple[str, str]:
    i = next((k for k, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    start = max(i - context, 0)
    return _short(a[start : i + context]), _short(b[start : i + context])


def _short(value: object, limit: int = 120) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def compare_file(name: str, reference: bytes, candidate: bytes) -> list[Difference]:
    """Every difference between two versions of one output file (empty when the bytes are equal)."""
    if reference == candidate:
        return []
    suffix = Path(name).suffix.lower()
    if suffix == ".json":
        try:
            parsed = json.loads(reference), json.loads(candidate)
        except ValueError as error:
            return [Difference(name, "", "JSON", "not JSON", str(error), False)]
        return list(compare_json(*parsed, name))
    if suffix in _IMAGE_SUFFIXES:
        return list(compare_image(reference, candidate, name))
    if suffix == ".ipynb":
        return list(compare_notebook(reference, candidate, name))
    if suffix == ".pdf":
        return list(compare_pdf(reference, candidate, name))
    return [Difference(name, "", f"{len(reference)} bytes", f"{len(candidate)} bytes", "must be identical", False)]


@dataclass
class Comparison:
    """The outcome: files compared, files with identical bytes, and every difference."""

    files: int
    identical: int
    differences: list[Difference]

    @property
    def failures(self) -> list[Difference]:
        return [d for d in self.differences if not d.within]


def compare(reference, candidate, paths: tuple[str, ...] = COMPARED) -> Comparison:
    """Compare every file under ``paths`` of two sources (``GitRevision`` or ``Folder``)."""
    in_reference, in_candidate = set(reference.files(paths)), set(candidate.files(paths))
    names = sorted(in_reference | in_candidate)
    differences, identical = [], 0
    for name in names:
        a = reference.read(name) if name in in_reference else None
        b = candidate.read(name) if name in in_candidate else None
        if a is None or b is None:
            side = "the candidate lacks it" if b is None else "only the candidate has it"
            differences.append(Difference(name, "", "", "", f"file: {side}", False))
            continue
        found = compare_file(name, a, b)
        identical += not found
        differences += found
    return Comparison(len(names), identical, differences)


def planted_changes(root: Path) -> list[tuple[str, str, bytes, bytes]]:
    """Changes the comparison must catch, made to copies (in memory) of the outputs in ``root``:
    [(what, file, original bytes, changed bytes)] - an accuracy one test image lower, another best network, a
    figure with one panel inverted, a printed number with one digit changed. Nothing on disk is modified."""
    from PIL import Image

    root = Path(root)
    planted = []
    name = "results/vgg19.json"
    original = (root / name).read_bytes()
    value = json.loads(original)
    value["metrics"]["test"]["accuracy"] -= 1 / value["metrics"]["test"]["n"]
    planted.append(("an accuracy one test image lower", name, original, _json_bytes(value)))
    name = "results/custom_summary.json"
    original = (root / name).read_bytes()
    value = json.loads(original)
    value["best_by_val"] = next(v for v in value["variants"] if v != value["best_by_val"])
    planted.append(("another best network", name, original, _json_bytes(value)))
    name = "figures/gradcam_grid_vgg19.jpg"
    original = (root / name).read_bytes()
    pixels = np.asarray(Image.open(io.BytesIO(original)).convert("RGB")).copy()
    h, w = pixels.shape[:2]
    panel = (slice(h // 5, h // 5 + h // 8), slice(w // 5, w // 5 + w // 8))
    pixels[panel] = 255 - pixels[panel]
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=90)
    planted.append(("a figure with one panel inverted", name, original, buffer.getvalue()))
    name = "notebooks/02_custom_architectures.ipynb"
    original = (root / name).read_bytes()
    notebook = json.loads(original)
    for output in (o for c in notebook["cells"] for o in c.get("outputs", []) if "text" in o):
        text = "".join(output["text"])
        digit = re.search(r"\d", text)
        if digit:
            changed = str((int(digit.group()) + 1) % 10)
            output["text"] = [text[: digit.start()] + changed + text[digit.end() :]]
            break
    planted.append(("a printed number with one digit changed", name, original, json.dumps(notebook).encode()))
    return planted


def _json_bytes(value: object) -> bytes:
    return (json.dumps(value, indent=2, sort_keys=True) + "\n").encode()


def check_planted(root: Path) -> int:
    """Print how the comparison judges each planted change; 0 when every one fails it, as it must."""
    missed = 0
    for what, name, original, changed in planted_changes(root):
        failures = [d for d in compare_file(name, original, changed) if not d.within]
        missed += not failures
        shown = failures[0].line() if failures else "NOT CAUGHT"
        print(f"planted {what}: {'caught' if failures else 'MISSED'}: {shown}")
    return 1 if missed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cnnlib.run.reproduction", description=__doc__.split("\n")[0])
    parser.add_argument("--reference", default="HEAD", help="a commit (default HEAD) or a folder")
    parser.add_argument("--candidate", default=str(config.REPO_ROOT), help="a folder (default: this checkout)")
    parser.add_argument("paths", nargs="*", default=list(COMPARED), help=f"what to compare (default {COMPARED})")
    parser.add_argument("--plant-check", metavar="DIR", help="show that planted changes to DIR's outputs fail")
    args = parser.parse_args(argv)
    if args.plant_check:
        return check_planted(Path(args.plant_check))
    reference = Folder(Path(args.reference)) if Path(args.reference).is_dir() else GitRevision(args.reference)
    candidate = Folder(Path(args.candidate))
    result = compare(reference, candidate, tuple(args.paths))
    for difference in result.differences:
        print(difference.line())
    failures = len(result.failures)
    print(
        f"reproduction: {result.files} files compared ({', '.join(args.paths)}), {result.identical} identical bytes, "
        f"{len(result.differences) - failures} differences within tolerance, {failures} beyond "
        f"(candidate {candidate.label}, reference {reference.label})"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
