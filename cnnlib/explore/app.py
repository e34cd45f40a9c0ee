"""The interactive explorer: ipywidgets controls around ``state.ExplorerSession`` (the logic) and
``render`` (the picture). In a notebook::

    from cnnlib import explore
    explorer = explore.project_explorer()   # the project's split; every custom variant and VGG19
    explorer.widget                         # display it

Controls: model, image (split, class, index; or an uploaded file), method (every method in
``cnnlib.explore.registry``), layer, channel, neuron position (row/column sliders, or the
channel's argmax) and target class. Each change redraws one ``Image`` widget and three HTML
lines in place. Controls a method does not read are greyed out. Programmatic use (tests,
notebooks): set any control's ``.value``, or ``explorer.set(model=..., layer=...)``; the
last ``Frame`` (arrays and messages) is ``explorer.frame``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import ipywidgets as widgets

from cnnlib import config
from cnnlib.explore import registry
from cnnlib.explore.render import message_html, probabilities_html, render, weights_html
from cnnlib.explore.state import Dataset, ExplorerSession, Frame, Loader, ModelEntry, Progress, State, Upload
from cnnlib.models import training, vgg19
from cnnlib.models.architectures import VARIANTS

PREDICTED = "predicted class"


class Explorer:
    """The widgets, wired to an ``ExplorerSession``. ``widget`` is what a notebook displays."""

    def __init__(
        self,
        session: ExplorerSession,
        model: str | None = None,
        method: str = "Grad-CAM",
        split: str = "test",
        class_name: str | None = None,
    ):
        self.session, data = session, session.data
        self.frame: Frame | None = None
        self._syncing = False
        w = widgets
        self.model = w.Dropdown(
            options=list(session.catalogue), value=model or next(iter(session.catalogue)), description="model"
        )
        self.split = w.Dropdown(options=list(data.arrays), value=split, description="split")
        self.class_name = w.Dropdown(
            options=list(data.classes), value=class_name or data.classes[0], description="class"
        )
        self.index = w.IntSlider(0, 0, 0, description="image #")
        self.upload = w.FileUpload(accept="image/*", multiple=False, description="upload image")
        self.method = w.Dropdown(options=registry.method_names(), value=method, description="method")
        self.layer = w.Dropdown(options=[], description="layer")
        wide = {"description_width": "initial"}
        self.channel = w.IntText(0, description="channel", style=wide, layout=w.Layout(width="150px"))
        self.at_argmax = w.Checkbox(True, description="neuron at the channel's argmax", style=wide, indent=False)
        self.row = w.IntSlider(0, 0, 0, description="neuron row")
        self.col = w.IntSlider(0, 0, 0, description="neuron col")
        self.target = w.Dropdown(
            options=[(PREDICTED, -1)] + [(c, i) for i, c in enumerate(data.classes)], value=-1, description="target"
        )
        self.progress = w.IntProgress(0, 0, 1, description="", layout=w.Layout(visibility="hidden"))
        self.weights, self.probabilities, self.message = w.HTML(), w.HTML(), w.HTML()
        self.image = w.Image(format="jpeg")
        for control, css in (  # names the browser test and benchmark find them by (cnnlib.explore.browser)
            (self.model, "model"),
            (self.index, "index"),
            (self.method, "method"),
            (self.layer, "layer"),
            (self.channel, "channel"),
            (self.target, "target"),
            (self.at_argmax, "argmax"),
            (self.row, "row"),
            (self.col, "col"),
            (self.image, "picture"),
            (self.message, "message"),
            (self.weights, "weights"),
        ):
            control.add_class(f"cnnlib-{css}")
        self.widget = w.VBox(
            [
                w.HBox([self.model, self.progress]),
                self.weights,
                w.HBox([self.split, self.class_name, self.index, self.upload]),
                w.HBox([self.method, self.layer, self.channel, self.target]),
                w.HBox([self.at_argmax, self.row, self.col]),
                self.image,
                w.HBox([self.probabilities, self.message]),
            ]
        )
        session.progress = self._show_progress
        self.model.observe(self._model_changed, "value")
        for control in (self.split, self.class_name):
            control.observe(self._image_changed, "value")
        self.index.observe(self._index_changed, "value")
        self.upload.observe(self._uploaded, "value")
        for control in (self.method, self.layer, self.channel, self.at_argmax, self.row, self.col, self.target):
            control.observe(lambda _: self.redraw(), "value")
        self._upload: Upload | None = None
        self._model_changed(None)

    # ------------------------------------------------------------------ state <-> widgets

    def state(self) -> State:
        """The controls' values as a ``State``."""
        return State(
            model=self.model.value,
            method=self.method.value,
            split=self.split.value,
            class_name=self.class_name.value,
            index=self.index.value,
            upload=self._upload,
            layer=self.layer.value,
            channel=self.channel.value,
            position=None if self.at_argmax.value else (self.row.value, self.col.value),
            target=None if self.target.value < 0 else self.target.value,
        )

    def set(self, **values) -> Frame:
        """Set several controls at once (names as attributes, e.g. ``layer="conv2"``), redraw once."""
        late = {k: values.pop(k) for k in ("row", "col") if k in values}  # their ranges follow the layer
        for batch in [b for b in (values, late) if b] or [{}]:  # one redraw per batch given, at least one
            self._syncing = True
            try:
                for name, value in batch.items():
                    getattr(self, name).value = value
            finally:
                self._syncing = False
            self.redraw()
        return self.frame

    def redraw(self) -> Frame | None:
        """Compute the frame of the current state and draw it into the widgets (in place)."""
        if self._syncing:
            return self.frame
        self.frame = frame = self.session.frame(self.state())
        self._syncing = True
        try:
            if frame.layer_shape is not None:
                h, w, _ = frame.layer_shape
                self.row.max, self.col.max = h - 1, w - 1
            for control, name in ((self.layer, "layer"), (self.channel, "channel"), (self.target, "target")):
                control.disabled = name not in frame.needs
            for control in (self.at_argmax, self.row, self.col):
                control.disabled = "position" not in frame.needs
            self.row.disabled = self.col.disabled = self.row.disabled or self.at_argmax.value
            if frame.image is not None and frame.explanation is not None and frame.layer_shape is not None:
                self.channel.description = f"channel (<{frame.layer_shape[2]})"
        finally:
            self._syncing = False
        start = time.perf_counter()
        self.weights.value = weights_html(frame)
        self.image.value = render(frame, self.session.data.classes)
        self.probabilities.value = probabilities_html(frame, self.session.data.classes)
        self.message.value = message_html(frame)
        frame.seconds["draw"] = time.perf_counter() - start
        return frame

    # ------------------------------------------------------------------ events

    def _show_progress(self, done: int, total: int, text: str) -> None:
        self.progress.layout.visibility = "visible" if done < total else "hidden"
        self.progress.max, self.progress.value, self.progress.description = max(total, 1), done, text[:40]
        self.weights.value = f"<i>{text}</i>"

    def _model_changed(self, _) -> None:
        try:
            layers = self.session.layers(self.model.value)
        except Exception as exc:  # noqa: BLE001 - e.g. VGG19 weights unavailable: say so in the panel
            self.message.value = message_html(Frame(self.state(), message=str(exc)))
            self.weights.value = ""
            return
        self._syncing = True
        try:
            keep = self.layer.value in layers
            self.layer.options = layers
            if not keep:
                self.layer.value = layers[-1]
        finally:
            self._syncing = False
        self._sync_index()
        self.redraw()

    def _sync_index(self) -> None:
        count = len(self.session.data.indices(self.split.value, self.class_name.value))
        self._syncing = True
        try:
            self.index.max = max(count - 1, 0)
        finally:
            self._syncing = False

    def _image_changed(self, _) -> None:
        self._upload = None
        self._sync_index()
        self.redraw()

    def _index_changed(self, _) -> None:
        self._upload = None
        self.redraw()

    def _uploaded(self, change) -> None:
        files = change["new"]
        if not files:
            return
        last = files[-1]
        self._upload = Upload(str(last.get("name", "upload")), bytes(last.get("content", b"")))
        self.redraw()


# ----------------------------------------------------------------------------- the project's models


def _custom_loader(variant: str, arrays, split_hash: str, settings: config.TrainSettings, seed: int) -> Loader:
    chain = [variant]
    while VARIANTS[chain[0]][1] is not None:
        chain.insert(0, VARIANTS[chain[0]][1])

    def load(progress: Progress) -> ModelEntry:
        source = None
        for step, name in enumerate(chain):
            progress(step, len(chain), f"loading or training {name} ({step + 1}/{len(chain)})")
            source, _ = training.train_variant(name, arrays, settings, seed, source_model=source, data_key=split_hash)
        progress(len(chain), len(chain), "ready")
        return ModelEntry(
            source, lambda x: x.astype("float32"), f"trained here: {variant}, seed {seed}, split {split_hash[:8]}"
        )

    return load


def _vgg_loader(arrays, split_hash: str, settings: config.TrainSettings, seed: int, n_classes: int) -> Loader:
    def load(progress: Progress) -> ModelEntry:
        progress(0, 1, "VGG19: weights, cached features, head")
        run = vgg19.fit_classifier(arrays, split_hash, settings, seed, n_classes)
        progress(1, 1, "ready")
        return ModelEntry(run.model, vgg19.preprocess, f"VGG19 {run.weights.label}", not run.weights.is_imagenet)

    return load


def project_catalogue(
    arrays: Mapping,
    split_hash: str,
    settings: config.TrainSettings,
    seed: int = config.SEED,
    n_classes: int = len(config.CLASSES),
) -> dict[str, Loader]:
    """{model name: loader} for every custom variant and VGG19, through the training caches."""
    catalogue = {v: _custom_loader(v, arrays, split_hash, settings, seed) for v in VARIANTS}
    catalogue["vgg19"] = _vgg_loader(arrays, split_hash, settings, seed, n_classes)
    return catalogue


def project_explorer(
    seed: int = config.SEED, model: str | None = None, method: str = "Grad-CAM", class_name: str = "scorpion"
) -> Explorer:
    """The explorer on the project's committed split (images decoded once, models from the cache).

    ``model`` defaults to the best custom variant by validation accuracy (``results/custom_summary.json``).
    """
    from cnnlib.data import images
    from cnnlib.store import results

    classes = tuple(config.CLASSES)
    split = images.load_project_split(seed, classes)
    if model is None:
        model = results.read_results("custom_summary", notebook="02_custom_architectures.ipynb")["best_by_val"]
    data = Dataset(split.arrays, classes, "train", split.path_of)
    session = ExplorerSession(
        project_catalogue(split.arrays, split.split_hash, config.train_settings(), seed, len(classes)), data
    )
    return Explorer(session, model, method, "test", class_name)
