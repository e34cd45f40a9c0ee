"""The built PDF as a reader sees it: every image and caption inside the page's text area, no caption printed
over an image, every float in its own section, no empty section heading, the punctuation after inline values.

Reads the PDF with pdfplumber (positions of images, characters and lines; points, origin top left).
"""

from __future__ import annotations

import re

import pytest

from cnnlib.report import pdf

pdfplumber = pytest.importorskip("pdfplumber", reason="pdfplumber is in requirements-dev.txt (make testdeps)")

CM = 72 / 2.54  # points per centimetre
MARGIN = 2 * CM  # report.typ: margin (x: 2cm, y: 2cm)
SLACK = 1.0  # points: rounding of positions in the PDF
HEADING_SIZE = 14.0  # level-1 headings are set at 14.7 pt, body text at 10.5, captions at 9
CAPTION = re.compile(r"^(Figure|Table) \d+: ")


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    """[(page, its text lines)] of a freshly built PDF."""
    out = tmp_path_factory.mktemp("layout") / "report.pdf"
    pdf.build(output=out)
    with pdfplumber.open(out) as document:
        yield [(page, page.extract_text_lines()) for page in document.pages]


def _inside(box: dict, page) -> bool:
    return (
        box["x0"] >= MARGIN - SLACK
        and box["x1"] <= page.width - MARGIN + SLACK
        and box["top"] >= MARGIN - SLACK
        and box["bottom"] <= page.height - MARGIN + SLACK
    )


def _is_heading(line: dict) -> bool:
    size = max(c["size"] for c in line["chars"])  # level 1: 14.7 pt (the title above them is 18 pt)
    return HEADING_SIZE < size < HEADING_SIZE + 2 and "Bold" in line["chars"][0]["fontname"]


def _set_box(line: dict) -> dict:
    """A line's box without punctuation at its ends: justified text lets it hang into the margin by design."""
    chars = [c for c in line["chars"] if c["text"] not in ".,;:!?'’\"”)"] or line["chars"]
    return {
        "x0": min(c["x0"] for c in chars),
        "x1": max(c["x1"] for c in chars),
        "top": line["top"],
        "bottom": line["bottom"],
    }


def _flow(pages) -> list[tuple[int, dict]]:
    """Every text line in reading order, with its page number (1-based), page numbers left out."""
    return [
        (n, line)
        for n, (page, lines) in enumerate(pages, start=1)
        for line in lines
        if line["top"] < page.height - MARGIN + SLACK  # the page number sits in the bottom margin
    ]


def test_every_image_lies_inside_the_text_area(pages):
    outside = [
        (n, [round(image[k]) for k in ("x0", "top", "x1", "bottom")])
        for n, (page, _) in enumerate(pages, start=1)
        for image in page.images
        if not _inside(image, page)
    ]
    assert not outside, f"images outside the text area (page, [x0, top, x1, bottom] in pt): {outside}"


def test_every_caption_lies_inside_the_text_area_and_off_every_image(pages):
    problems = []
    for n, (page, lines) in enumerate(pages, start=1):
        for line in lines:
            if not CAPTION.match(line["text"]):
                continue
            if not _inside(_set_box(line), page):
                problems.append((n, line["text"][:40], "outside the text area"))
            for image in page.images:
                if line["top"] < image["bottom"] - SLACK and line["bottom"] > image["top"] + SLACK:
                    if line["x0"] < image["x1"] and line["x1"] > image["x0"]:
                        problems.append((n, line["text"][:40], "printed over an image"))
    assert not problems, problems


def test_no_heading_is_directly_followed_by_another(pages):
    flow = _flow(pages)
    empty = [
        (n, line["text"], following["text"])
        for (n, line), (_, following) in zip(flow, flow[1:])
        if _is_heading(line) and _is_heading(following)
    ]
    assert not empty, f"section headings with nothing under them: {empty}"


@pytest.mark.parametrize(
    "caption, section",
    [
        ("Images per class and split", "Data"),
        ("One training image per class", "Data"),
        ("Training settings (the reference", "Training settings"),
        ("Test confusion matrix of the best custom network", "Comparison of the custom networks"),
        ("VGG19 against the best custom network", "VGG19 transfer learning"),
        ("VGG19 test confusion matrix", "VGG19 transfer learning"),
        ("Every method (rows) on the first test image", "Which explanation to believe"),
    ],
)
def test_floats_sit_in_their_own_section(pages, caption, section):
    current, found = None, []
    for _, line in _flow(pages):
        if _is_heading(line):
            current = re.sub(r"^\d+ ", "", line["text"])
        elif CAPTION.match(line["text"]) and caption in CAPTION.sub("", line["text"]):
            found.append(current)
    assert found == [section], f"{caption!r} found under {found}, expected once under {section!r}"


def test_the_punctuation_after_inline_values_is_kept(pages):
    """Typst ends an inline expression at a ';' and drops it: report.typ escapes each one (\\;)."""
    text = " ".join(" ".join(line["text"] for line in lines) for _, lines in pages)
    for pattern in (
        r"the reference picked \w+; section 11 shows",
        r"picked, over the seeds: .+?; over the splits:",
        r"highest [\w\- ]+; lowest deletion AUC",
        r"SHA-256 [0-9a-f]{64}; \d+ images verified",
    ):
        assert re.search(pattern, text), pattern
