"""The explorer without widgets: a ``State`` (every control's value) -> a ``Frame`` (arrays and messages).

``ExplorerSession.frame(state)`` loads the chosen model (once per explorer session, with a progress callback),
decodes the chosen image (a dataset image, or an uploaded file), computes the predicted
probabilities and the chosen method's ``Explanation`` through ``cnnlib.explore.registry``,
and returns everything the panel shows. Any problem (a channel the layer lacks, a file that is
not an image, a file too large) becomes ``Frame.message``, never an exception. What is kept
(``cnnlib.explore.work``): loaded models; for the *current* image on the current model with its current weights,
every array computed so far (input, probabilities, activations, every target's Grad-CAM, each neuron's guided
backpropagation, ...), so a change of channel, neuron or target redraws without a pass; per model and weights,
the work on the example set (top-k patch search). The weights are checked at every frame (a CRC-32 of every
variable): a model retrained or edited in place is recomputed, never shown from memory. ``Frame.passes`` and
``Frame.seconds`` say what each frame computed and how long it took.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cnnlib.backend import keras
from cnnlib.data import images
from cnnlib.explore import registry, views  # noqa: F401  (views registers the methods)
from cnnlib.explore.work import ImageWork, weights_fingerprint
from cnnlib.interpret import default_layer, explainable_layers
from cnnlib.interpret.view import resolve_layer, view
from cnnlib.models.forward import compiled_forward

MAX_UPLOAD_BYTES = 5 << 20  # the panel shows 224 x 224 pixels; a larger file is refused before decoding
Progress = Callable[[int, int, str], None]  # (steps done, steps in all, what is happening)


class InputError(ValueError):
    """A control's value cannot be used (bad upload, missing layer, image index out of range)."""


@dataclass(frozen=True)
class ModelEntry:
    """A loaded model, how images become its input, and which weights made it (always shown)."""

    model: keras.Model
    preprocess: Callable[[np.ndarray], np.ndarray]  # uint8 (N, H, W, 3) -> float32 model input
    weights: str  # e.g. "RANDOM INIT (seed 42), not ImageNet" or "trained here: arch3, seed 42, split 1a2b3c4d"
    warning: bool = False  # the weights are a fallback (shown in red)


Loader = Callable[[Progress], ModelEntry]


@dataclass(frozen=True)
class Dataset:
    """Images to choose from: {split: (uint8 (N, H, W, 3), labels (N,))}, class names, optional file names."""

    arrays: Mapping[str, tuple[np.ndarray, np.ndarray]]
    classes: tuple[str, ...]
    examples_split: str = "train"  # the set top-k patches searches
    name_of: Callable[[str, int], str] | None = None  # (split, index in the split) -> file name

    def indices(self, split: str, class_name: str) -> np.ndarray:
        """Indices in ``arrays[split]`` of the images of ``class_name``."""
        if split not in self.arrays:
            raise InputError(f"No split {split!r}; choose one of {', '.join(self.arrays)}.")
        if class_name not in self.classes:
            raise InputError(f"No class {class_name!r}; choose one of {', '.join(self.classes)}.")
        return np.flatnonzero(self.arrays[split][1] == self.classes.index(class_name))


@dataclass(frozen=True)
class Upload:
    name: str
    content: bytes


@dataclass(frozen=True)
class State:
    """Every control's value. ``position`` None: the channel's argmax; ``target`` None: the predicted class."""

    model: str
    method: str
    split: str = "test"
    class_name: str = ""
    index: int = 0  # among that class's images in the split
    upload: Upload | None = None  # replaces the dataset image when given
    layer: str | None = None  # None: the last convolution layer
    channel: int = 0
    position: tuple[int, int] | None = None
    target: int | None = None


@dataclass
class Frame:
    """What the panel shows for a state. ``message`` is set when something could not be shown."""

    state: State
    weights: str = ""
    warning: bool = False
    image_name: str = ""
    image: np.ndarray | None = None  # uint8 (H, W, 3)
    probabilities: np.ndarray | None = None  # (classes,)
    target: int | None = None  # the class explained (the predicted one unless chosen)
    layers: list[str] = field(default_factory=list)
    layer: str | None = None
    layer_shape: tuple[int, int, int] | None = None  # (h, w, channels) of the layer
    needs: frozenset[str] = frozenset()
    explanation: registry.Explanation | None = None
    message: str = ""
    passes: dict[str, int] = field(default_factory=dict)  # what this frame computed: {kind: count}, see work.py
    seconds: dict[str, float] = field(default_factory=dict)  # {kind: seconds}; "weights check"; the app adds "draw"


def read_upload(upload: Upload, size: int) -> np.ndarray:
    """An uploaded file -> uint8 (size, size, 3); ``InputError`` saying what is wrong and what to do."""
    if len(upload.content) > MAX_UPLOAD_BYTES:
        raise InputError(
            f"{upload.name} is {len(upload.content) / 2**20:.1f} MiB; uploads are limited to "
            f"{MAX_UPLOAD_BYTES >> 20} MiB (the explorer works at {size} x {size} pixels). "
            "Upload a smaller copy, e.g. a JPEG about 1000 pixels wide."
        )
    if not upload.content:
        raise InputError(f"{upload.name} is empty: upload a JPEG or PNG image.")
    try:
        return images.load_image(Path(upload.name), size, payload=upload.content)
    except images.DatasetError as exc:
        raise InputError(
            f"{upload.name} is not an image this explorer can read: upload a JPEG or PNG "
            f"({str(exc).split(': ', 1)[-1].split('. Replace')[0]})."
        ) from exc


class ExplorerSession:
    """Models loaded on demand, the current image's work, and ``frame(state)``.

    Args:
        catalogue: {model name: loader}; a model is loaded on first use and kept.
        data: the images to choose from.
        progress: called with (steps done, steps in all, text) while a model loads.
        keep: True: keep the current image's arrays (``ImageWork``) between frames; False: compute every frame
            from scratch (the baseline ``benchmarks/bench_explore.py`` compares with, and a check that kept
            frames equal fresh ones).
    """

    def __init__(
        self,
        catalogue: Mapping[str, Loader],
        data: Dataset,
        progress: Progress | None = None,
        *,
        keep: bool = True,
    ):
        self.catalogue, self.data = dict(catalogue), data
        self.progress = progress or (lambda done, total, text: None)
        self.keep = keep
        self._entries: dict[str, ModelEntry] = {}
        self._examples: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # per model: the prepared example set
        self._work: ImageWork | None = None  # the current image's, on the current model and weights
        self._model_work: dict[str, ImageWork] = {}  # per model (and its weights): work on the example set

    # ------------------------------------------------------------------ models and images

    def entry(self, name: str) -> ModelEntry:
        """The loaded model ``name`` (loaded, or trained, on first use)."""
        if name not in self.catalogue:
            raise InputError(f"No model {name!r}; choose one of {', '.join(self.catalogue)}.")
        if name not in self._entries:
            self._entries[name] = self.catalogue[name](self.progress)
        return self._entries[name]

    def unload(self, name: str) -> None:
        """Drop model ``name`` and everything computed with it (the next use loads it again)."""
        self._entries.pop(name, None)
        self._examples.pop(name, None)
        self._model_work.pop(name, None)
        if self._work is not None and self._work.key[0] == name:
            self._work = None

    def layers(self, name: str) -> list[str]:
        """The model's convolution layers (what layer menus offer)."""
        return explainable_layers(self.entry(name).model)

    def image(self, state: State, size: int) -> tuple[np.ndarray, str, str]:
        """(uint8 image, its name, a key identifying it) for the state's image."""
        if state.upload is not None:
            key = "upload:" + hashlib.sha256(state.upload.content).hexdigest()
            return read_upload(state.upload, size), f"uploaded {state.upload.name}", key
        chosen = self.data.indices(state.split, state.class_name)
        if not 0 <= state.index < len(chosen):
            raise InputError(
                f"Split {state.split!r} has {len(chosen)} {state.class_name} images "
                f"(0-{len(chosen) - 1}); image {state.index} does not exist."
            )
        i = int(chosen[state.index])
        name = self.data.name_of(state.split, i) if self.data.name_of else f"{state.class_name} #{state.index}"
        image = self.data.arrays[state.split][0][i]
        if image.shape[:2] != (size, size):
            raise InputError(
                f"Dataset images are {image.shape[0]} x {image.shape[1]}; the model takes {size} x {size}."
            )
        return image, f"{state.split}: {name}", f"{state.split}/{i}"

    def examples(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(model inputs, uint8 images) of the example split for model ``name`` (prepared once)."""
        if name not in self._examples:
            raw = self.data.arrays[self.data.examples_split][0]
            self._examples[name] = (np.asarray(self.entry(name).preprocess(raw), np.float32), raw)
        return self._examples[name]

    def _works(self, name: str, model: keras.Model, image_key: str) -> tuple[ImageWork, ImageWork]:
        """(the image's work, the model's work), new ones when the model, its weights or the image changed."""
        weights = (name, id(model), weights_fingerprint(model))
        if not self.keep or self._work is None or self._work.key != (*weights, image_key):
            self._work = ImageWork((*weights, image_key))
        model_work = self._model_work.get(name)
        if not self.keep or model_work is None or model_work.key != weights:
            model_work = self._model_work[name] = ImageWork(weights)
        return self._work, model_work

    # ------------------------------------------------------------------ the frame

    def frame(self, state: State) -> Frame:
        """Everything the panel shows for ``state``; problems become ``Frame.message``."""
        frame = Frame(state)
        try:
            self._fill(frame, state)
        except Exception as exc:  # noqa: BLE001 - the panel shows a message, never a traceback
            text = str(exc.args[0] if isinstance(exc, KeyError) and exc.args else exc).strip() or type(exc).__name__
            known = isinstance(exc, (ValueError, KeyError, LookupError, OSError, RuntimeError))
            frame.message = text if known else f"{type(exc).__name__}: {text}"
        return frame

    def _fill(self, frame: Frame, state: State) -> None:
        method = registry.method(state.method)
        frame.needs = method.needs
        entry = self.entry(state.model)
        frame.weights, frame.warning = entry.weights, entry.warning
        model = entry.model
        size = int(model.inputs[0].shape[1])
        image, frame.image_name, key = self.image(state, size)
        frame.image = image
        start = time.perf_counter()
        work, model_work = self._works(state.model, model, key)
        checked = time.perf_counter() - start
        before = [w.counts() for w in (work, model_work)]
        try:
            self._explain(frame, state, method, entry, image, work, model_work)
        finally:  # what this frame computed, even when it ends in a message
            for w, (passes, seconds) in zip((work, model_work), before):
                for kind, count in (w.passes - passes).items():
                    frame.passes[kind] = frame.passes.get(kind, 0) + count
                    frame.seconds[kind] = frame.seconds.get(kind, 0.0) + w.seconds[kind] - seconds[kind]
            frame.seconds["weights check"] = checked

    def _explain(self, frame, state, method, entry, image, work: ImageWork, model_work: ImageWork) -> None:
        model = entry.model
        x = work.get(("inputs",), "preprocess", lambda: np.asarray(entry.preprocess(image[None]), np.float32))
        frame.probabilities = work.get(("probabilities",), "forward", lambda: np.asarray(compiled_forward(model)(x))[0])
        frame.layers = explainable_layers(model)
        layer = state.layer or default_layer(model)
        if layer not in frame.layers:
            raise InputError(
                f"Model {state.model!r} has no explainable layer {layer!r}; choose one of {', '.join(frame.layers)}."
            )
        frame.layer = layer
        frame.layer_shape = tuple(int(n) for n in view(model).outputs[resolve_layer(model, layer)].shape[1:])
        n_classes = len(frame.probabilities)
        if state.target is not None and not 0 <= state.target < n_classes:
            raise InputError(
                f"Model {state.model!r} has {n_classes} classes (0-{n_classes - 1}); "
                f"target {state.target} does not exist."
            )
        frame.target = int(np.argmax(frame.probabilities)) if state.target is None else int(state.target)
        request = registry.Request(
            model,
            x,
            image,
            layer=layer,
            channel=int(state.channel),
            position=state.position,
            target=frame.target,
            work=work,
            model_work=model_work,
        )
        if "examples" in method.needs:
            request.examples, request.example_images = self.examples(state.model)
        frame.explanation = method.explain(request)
