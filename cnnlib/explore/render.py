"""Draw an explorer ``Frame`` into one JPEG (panels side by side) and its text as HTML; fast, no figures.

Pictures are composed with Pillow (a redraw costs milliseconds, and no matplotlib figure is
created, so nothing accumulates in the notebook): each panel is ``PANEL`` pixels high, maps
are enlarged with nearest-neighbour sampling (each neuron stays a visible square), heat maps use
the "jet" colour map over the image (alpha 0.45, as the report's figures), input gradients
the report's rendering (``plots.gradient_to_image``), receptive-field boxes a red outline.
"""

from __future__ import annotations

import html
import io

import numpy as np
from matplotlib import colormaps
from PIL import Image, ImageDraw, ImageFont

from cnnlib.explore.registry import Panel
from cnnlib.explore.state import Frame
from cnnlib.report.plots import gradient_to_image

PANEL = 224  # pixels
TITLE = 18  # pixels above each panel
GAP = 8
ALPHA = 0.45


def _uint8(rgb: np.ndarray) -> np.ndarray:
    return np.clip(np.round(rgb * 255), 0, 255).astype(np.uint8)


def _colour(values: np.ndarray, cmap: str, scale: bool = True) -> np.ndarray:
    """(h, w) values -> uint8 (h, w, 3) through a colour map (scaled to the map's own range if ``scale``)."""
    v = values.astype(np.float32)
    if scale:
        low, high = float(v.min()), float(v.max())
        v = (v - low) / (high - low) if high > low else np.zeros_like(v)
    return _uint8(colormaps[cmap](v)[..., :3])


def _fit(array: np.ndarray, width: int, height: int, nearest: bool) -> Image.Image:
    img = Image.fromarray(array)
    return img.resize((width, height), Image.Resampling.NEAREST if nearest else Image.Resampling.BILINEAR)


def _outline(draw: ImageDraw.ImageDraw, box, scale_y: float, scale_x: float, colour="red") -> None:
    top, left, bottom, right = box
    if bottom > top and right > left:
        draw.rectangle(
            (left * scale_x, top * scale_y, right * scale_x - 1, bottom * scale_y - 1), outline=colour, width=2
        )


def _tiles(array: np.ndarray, columns: int, cell: int, coloured: bool) -> Image.Image:
    n = len(array)
    rows = -(-n // columns)
    sheet = Image.new("RGB", (columns * cell, rows * cell), "white")
    for i, tile in enumerate(array):
        rgb = _colour(tile, "viridis") if coloured else tile
        sheet.paste(
            _fit(rgb, cell - 2, cell - 2, nearest=coloured), ((i % columns) * cell + 1, (i // columns) * cell + 1)
        )
    return sheet


def draw_panel(panel: Panel, image: np.ndarray) -> Image.Image:
    """One panel (without title) as a PIL image, ``PANEL`` pixels high."""
    h, w = image.shape[:2]
    if panel.kind in ("image", "heat"):
        rgb = image
        if panel.kind == "heat":
            heat = _colour(np.clip(panel.array, 0, 1), "jet", scale=False)
            rgb = np.round((1 - ALPHA) * image + ALPHA * heat).astype(np.uint8)
        picture = _fit(rgb, PANEL, PANEL, nearest=False)
        draw = ImageDraw.Draw(picture)
        for box in panel.boxes:
            _outline(draw, box, PANEL / h, PANEL / w)
        return picture
    if panel.kind == "gradient":
        return _fit(_uint8(gradient_to_image(panel.array)), PANEL, PANEL, nearest=False)
    if panel.kind == "map":
        picture = _fit(_colour(panel.array, "viridis"), PANEL, PANEL, nearest=True)
        if panel.marker is not None:
            (row, col), (mh, mw) = panel.marker, panel.array.shape
            sy, sx = PANEL / mh, PANEL / mw
            ImageDraw.Draw(picture).rectangle(
                (col * sx, row * sy, (col + 1) * sx - 1, (row + 1) * sy - 1), outline="red", width=2
            )
        return picture
    if panel.kind == "grid":
        channels = np.moveaxis(panel.array, -1, 0)
        return _tiles(channels, 8, PANEL // 4, coloured=True)
    if panel.kind == "tiles":
        columns = 1 if len(panel.array) == 1 else 3
        return _tiles(panel.array, columns, PANEL // columns, coloured=False)
    raise ValueError(f"Unknown panel kind {panel.kind!r}.")


def render(frame: Frame, classes: tuple[str, ...] = (), quality: int = 90) -> bytes:
    """The frame's picture as JPEG bytes: a line naming the model, its weights and (for a method that reads a
    target) the class explained, then the input image and the explanation's panels side by side, titled.

    JPEG (not PNG): a tenth of the bytes for photo-like panels, so redraws travel fast to the
    browser and a saved notebook stays small."""
    if frame.image is None:
        pictures = [("no image", Image.new("RGB", (PANEL, PANEL), (235, 235, 235)))]
    else:
        panels = frame.explanation.panels if frame.explanation is not None else ()
        shows_input = any(p.kind == "image" for p in panels)
        pictures = [] if shows_input else [("input", _fit(frame.image, PANEL, PANEL, nearest=False))]
        if frame.explanation is not None:
            pictures += [(p.title, draw_panel(p, frame.image)) for p in frame.explanation.panels]
    width = sum(p.width for _, p in pictures) + GAP * (len(pictures) - 1)
    height = 2 * TITLE + max(p.height for _, p in pictures)
    sheet = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=12)
    # the first line says which model and weights made the picture (a saved copy says it too); red for a fallback
    made_by = f"{frame.state.model}: {frame.weights or '(weights not loaded)'}"
    if "target" in frame.needs and frame.target is not None:
        name = classes[frame.target] if frame.target < len(classes) else f"class {frame.target}"
        made_by += f" | explained: {name}"
    draw.text((2, 2), made_by[: width // 6], fill=(192, 0, 0) if frame.warning else "black", font=font)
    x = 0
    for title, picture in pictures:
        draw.text((x + 2, TITLE + 2), title[: picture.width // 6], fill="black", font=font)
        sheet.paste(picture, (x, 2 * TITLE))
        x += picture.width + GAP
    buffer = io.BytesIO()
    sheet.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def weights_html(frame: Frame) -> str:
    """Which weights made the picture, in red when they are a fallback."""
    colour = "#c00000" if frame.warning else "#1a5e1a"
    return (
        f"<b>model:</b> {html.escape(frame.state.model)} &nbsp; <b>weights:</b> "
        f"<span style='color:{colour};font-weight:bold'>{html.escape(frame.weights or '(not loaded)')}</span>"
    )


def probabilities_html(frame: Frame, classes: tuple[str, ...]) -> str:
    """Predicted probabilities as a small bar table; the explained class marked."""
    if frame.probabilities is None:
        return ""
    rows = []
    best = int(np.argmax(frame.probabilities))
    for i, p in enumerate(frame.probabilities):
        name = classes[i] if i < len(classes) else f"class {i}"
        mark = " (predicted)" if i == best else ""
        mark += " &larr; explained" if i == frame.target and "target" in frame.needs else ""
        bar = f"<div style='background:#4a7ebb;height:10px;width:{100 * float(p):.0f}px'></div>"
        rows.append(f"<tr><td>{html.escape(name)}</td><td>{bar}</td><td>{100 * float(p):.1f}%{mark}</td></tr>")
    return f"<b>{html.escape(frame.image_name)}</b><table>{''.join(rows)}</table>"


def message_html(frame: Frame) -> str:
    """The frame's problem (shown instead of a traceback), or its explanation's note."""
    if frame.message:
        return (
            f"<div class='cnnlib-error' style='color:#c00000;border:1px solid #c00000;padding:4px'>"
            f"{html.escape(frame.message, quote=False)}</div>"
        )
    if frame.explanation is not None and frame.explanation.note:
        return f"<div>{html.escape(frame.explanation.note, quote=False)}</div>"
    return ""
