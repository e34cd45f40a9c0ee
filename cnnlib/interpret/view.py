"""The model as every explanation method sees it: a flat copy that reads the original's weights.

Any Keras 3 Functional or Sequential classifier works, not only the project's own networks:

- **Always current.** The copy's layers are clones, but every call maps their variables onto
  the original layers' variables (``keras.StatelessScope``), inside the compiled function. So a
  map always reflects the model's weights *now*, after ``set_weights`` or ``fit``; nothing
  cached here is a result, only compiled graphs that read the live variables.
- **Class scores before softmax, found by itself** (``score_source``): a separate ``Softmax`` /
  ``Activation("softmax")`` output layer -> its input; a Dense/Conv output with a fused softmax
  (or sigmoid) -> its pre-activation; any other output is taken as logits already. An explicit
  ``score_layer`` overrides this. The user's model is never modified.
- **Nested models are inlined**, so a layer inside one is addressed by its path
  (``"vgg19/block5_conv4"``) or by its name alone when that is unique.
- **Guided copies** replace every ReLU (fused, ``Activation``, ``ReLU`` layers, ``relu6`` and
  ``ReLU(max_value=m)`` as a clipped ReLU) by the guided rule; activations for which guided
  backpropagation is undefined (swish/silu, gelu, elu, LeakyReLU, ...) keep their ordinary
  gradient, with one warning naming them.
"""

from __future__ import annotations

import warnings
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from cnnlib.backend import keras
from cnnlib.models.model_graph import (
    ExplainError,
    is_model,
    iter_layers,
    output_layer,
    resolve_layer,
    walk,
)

SATURATING = ("softmax", "sigmoid", "log_softmax")  # output activations whose input is the class score
RECTIFIERS = ("relu", "relu6")  # activations with a guided rule
NO_GUIDED_RULE = (
    "swish",
    "silu",
    "gelu",
    "elu",
    "selu",
    "leaky_relu",
    "mish",
    "hard_swish",
    "hard_silu",
    "celu",
    "softplus",
    "glu",
    "log_sigmoid",
)
_NO_RULE_LAYERS = (keras.layers.LeakyReLU, keras.layers.ELU, keras.layers.PReLU)
_CONV = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.SeparableConv2D)
# 4-D outputs that are not a feature map of their own: pooling (the head's reduction), identity-at-inference noise
_NOT_A_FEATURE_MAP = (
    keras.layers.MaxPooling2D,
    keras.layers.AveragePooling2D,
    keras.layers.GlobalMaxPooling2D,
    keras.layers.GlobalAveragePooling2D,
    keras.layers.Dropout,
    keras.layers.SpatialDropout2D,
    keras.layers.GaussianNoise,
    keras.layers.GaussianDropout,
)


# ----------------------------------------------------------------------------- guided rules


ops = keras.ops


@ops.custom_gradient
def guided_relu(x):
    """ReLU forward; backward passes dy only where dy > 0 and x > 0 (the guided backpropagation rule).

    Args:
        x: a float tensor of any shape.

    Returns:
        max(x, 0), of ``x``'s shape and dtype, whose gradient is the guided rule: the upstream gradient dy where dy > 0
        and x > 0, and 0 elsewhere (``keras.ops.custom_gradient``: every Keras backend).
    """

    def grad(*args, upstream=None):
        dy = args[0] if upstream is None else upstream
        return dy * ops.cast(dy > 0, dy.dtype) * ops.cast(x > 0, dy.dtype)

    return ops.relu(x), grad


def guided_clipped_relu(max_value: float) -> Callable:
    """min(max(x, 0), max_value) forward; backward passes dy only where dy > 0 and 0 < x < max_value."""

    @ops.custom_gradient
    def clipped(x):
        def grad(*args, upstream=None):
            dy = args[0] if upstream is None else upstream
            inside = ops.logical_and(x > 0, x < max_value)
            return dy * ops.cast(dy > 0, dy.dtype) * ops.cast(inside, dy.dtype)

        return ops.minimum(ops.relu(x), ops.cast(max_value, x.dtype)), grad

    clipped.__name__ = f"guided_relu_max{max_value:g}"
    return clipped


def activation_name(activation) -> str:
    """'relu', 'softmax', ... for a Keras activation (function, string or layer attribute); '' if none."""
    if activation is None:
        return ""
    if isinstance(activation, str):
        return activation
    return getattr(activation, "__name__", type(activation).__name__).lower()


# ----------------------------------------------------------------------------- layers


def conv_layer_names(model: keras.Model) -> list[str]:
    """Paths of the model's convolution layers (Conv2D, depthwise, separable), in order, nested ones included.

    Args:
        model: any Keras 3 model; it is only inspected.

    Returns:
        The paths of every ``Conv2D``, ``DepthwiseConv2D`` and ``SeparableConv2D`` layer (subclasses included) in the
        order of ``model.layers``, a nested model's layers by path (``"vgg19/block5_conv4"``) right after it; [] if
        there are none.
    """
    return [path for path, layer in iter_layers(model) if isinstance(layer, _CONV)]


def last_conv_layer(model: keras.Model) -> str:
    """Path of the last convolution layer (``default_layer`` starts from it).

    Args:
        model: any Keras 3 model; layers inside nested models count too.

    Returns:
        The last of ``conv_layer_names(model)``, e.g. ``"vgg19/block5_conv4"``.

    Raises:
        ExplainError: if the model has no ``Conv2D``, ``DepthwiseConv2D`` or ``SeparableConv2D`` layer (pass
            ``layer_name=`` a layer with a 4-D output instead).
    """
    names = conv_layer_names(model)
    if not names:
        raise ExplainError(
            f"Model {model.name!r} has no convolution layer, so there is no feature map to explain. "
            "Pass layer_name= a layer with a 4-D output (batch, height, width, channels)."
        )
    return names[-1]


def default_layer(model: keras.Model) -> str:
    """Path of the default layer of Grad-CAM and every CAM here: the last spatial feature map that feeds the
    classifier head, after its activation and before pooling.

    That is the last layer with a 4-D output (batch, h, w, channels) from the last convolution on, pooling and
    dropout-like layers left out: the convolution itself when it carries its activation (VGG19's
    ``block5_conv4``, this project's networks), the block output after batch normalisation and activation
    otherwise (ResNet50's ``conv5_block3_out``, MobileNetV2's ``out_relu``, EfficientNetB0's ``top_activation``),
    the maps the peers' examples explain.

    Args:
        model: any Keras 3 model; layers inside nested models count too.

    Returns:
        A layer path, e.g. ``"conv5_block3_out"`` or ``"vgg19/block5_conv4"``.

    Raises:
        ExplainError: as ``last_conv_layer`` when the model has no convolution.
    """
    last = last_conv_layer(model)
    layers = dict(iter_layers(model))
    outputs = view(model).outputs
    paths = list(outputs)
    chosen = last
    for path in paths[paths.index(last) + 1 :]:
        layer = layers.get(path)
        if layer is None or is_model(layer) or isinstance(layer, _NOT_A_FEATURE_MAP):
            continue
        if len(outputs[path].shape) == 4:
            chosen = path
    return chosen


def explainable_layers(model: keras.Model) -> list[str]:
    """The layers the explorer offers: every convolution (``conv_layer_names``), then ``default_layer`` when it is
    not one of them (a block output after batch normalisation and activation)."""
    names = conv_layer_names(model)
    default = default_layer(model)
    return names if default in names else [*names, default]


def check_channels(layer_name: str, count: int, channels: Sequence[int]) -> None:
    """ValueError naming the layer and its channel count when a channel is not in 0..count-1 (a negative index would
    otherwise count from the end, and one past the end fail deep inside NumPy)."""
    wrong = sorted({int(c) for c in channels if not 0 <= int(c) < count})
    if wrong:
        raise ValueError(f"Layer {layer_name!r} has {count} channels (0-{count - 1}); channel(s) {wrong} do not exist.")


def score_source(model: keras.Model, score_layer: str | None = None) -> str:
    """In words, where the class scores come from: for figure captions and checks.

    The rule every method applies (``view``); the model is only inspected, nothing is built.

    Args:
        model: a Keras 3 classifier with one image input and one output.
        score_layer: path or unique name of a layer whose output is taken as the class scores; None: found from the
            output layer, as below.

    Returns:
        One phrase naming the layer: the output of ``score_layer`` ("explicit") when given; else the input of an output
        ``Softmax`` layer, the input of an output ``Activation`` layer with softmax, sigmoid or log_softmax, the
        pre-activation of an output layer with one of those fused, or the model's output "taken as logits".

    Raises:
        ExplainError: if ``score_layer`` is unknown or ambiguous, or (``score_layer=None``) the model does not have
            exactly one input and one output.
    """
    if score_layer is not None:
        return f"output of layer {resolve_layer(model, score_layer)!r} (explicit)"
    path, layer = output_layer(model)
    if isinstance(layer, keras.layers.Softmax):
        return f"input of the output Softmax layer {path!r}"
    if isinstance(layer, keras.layers.Activation) and activation_name(layer.activation) in SATURATING:
        return f"input of the output {activation_name(layer.activation)} layer {path!r}"
    if activation_name(getattr(layer, "activation", None)) in SATURATING:
        return f"pre-activation of {path!r} (its fused {activation_name(layer.activation)} left out)"
    return f"output of {path!r}, taken as logits"


# ----------------------------------------------------------------------------- the flat copy


_warned: set[str] = set()  # names already warned about (a message, never a result)


def _warn_no_guided_rule(names: set[str]) -> None:
    new = sorted(names - _warned)
    if new:
        _warned.update(new)
        warnings.warn(
            f"Guided backpropagation is defined for ReLU-type activations only; {', '.join(new)} keep their "
            "ordinary gradient in the guided map (the guided rule is applied at every ReLU).",
            stacklevel=4,
        )


def _clone(layer: keras.layers.Layer, *, guided: bool, linear: bool, name: str, no_rule: set[str]):
    """A fresh layer with ``layer``'s configuration, optionally linear (output) or guided (ReLUs)."""
    config = {**layer.get_config(), "name": name}
    if linear:
        if isinstance(layer, keras.layers.Softmax) or isinstance(layer, keras.layers.Activation):
            return keras.layers.Identity(name=name)
        config["activation"] = "linear"
    if guided:
        if isinstance(layer, keras.layers.ReLU):
            slope, threshold, top = config.get("negative_slope"), config.get("threshold"), config.get("max_value")
            if not slope and not threshold:
                rule = guided_relu if top is None else guided_clipped_relu(float(top))
                return keras.layers.Activation(rule, name=name)
            no_rule.add("ReLU(negative_slope/threshold)")
        elif isinstance(layer, _NO_RULE_LAYERS):
            no_rule.add(type(layer).__name__)
    clone = layer.__class__.from_config(config)
    if guided and not linear:
        kind = activation_name(getattr(layer, "activation", None))
        if kind == "relu":
            clone.activation = guided_relu
        elif kind == "relu6":
            clone.activation = guided_clipped_relu(6.0)
        elif kind in NO_GUIDED_RULE:
            no_rule.add(kind)
    return clone


@dataclass
class View:
    """A flat copy of a model: symbolic input, every layer's output by path, the class-score tensor."""

    inputs: keras.KerasTensor
    outputs: dict[str, keras.KerasTensor]  # original layer path -> its output in the copy
    scores: keras.KerasTensor
    pairs: list[tuple[keras.Variable, keras.Variable]]  # (copy variable, original variable)
    functions: dict = field(default_factory=dict)  # compiled functions, keyed by their purpose
    tap: keras.KerasTensor | None = None  # with ``tap=path``: the input added to that layer's output (zeros)

    def probe(self, layer_paths: Sequence[str], with_scores: bool = False) -> keras.Model:
        """A model input (and, in a tapped view, the tap) -> [outputs of ``layer_paths``] (+ scores) in the copy."""
        outs = [self.outputs[p] for p in layer_paths] + ([self.scores] if with_scores else [])
        return keras.Model(self.inputs if self.tap is None else [self.inputs, self.tap], outs)

    def current(self):
        """The scope under which the copy computes with the original's current weights."""
        return keras.StatelessScope(state_mapping=[(c, o.value) for c, o in self.pairs])


def _build_view(model: keras.Model, guided: bool, score_layer: str | None, tap: str | None = None) -> View:
    _, last = output_layer(model)
    make_linear = score_layer is None and (
        isinstance(last, keras.layers.Softmax) or activation_name(getattr(last, "activation", None)) in SATURATING
    )
    outputs: dict[str, keras.KerasTensor] = {}
    layer_pairs: list[tuple[keras.layers.Layer, keras.layers.Layer]] = []
    no_rule: set[str] = set()
    tap_input = None

    def call(layer, path, *args, **kwargs):
        nonlocal tap_input
        if path in outputs:
            raise ExplainError(
                f"Layer {path!r} is called more than once (a shared layer); explain a model "
                "whose layers are each used once."
            )
        linear = make_linear and layer is last
        copy = _clone(layer, guided=guided, linear=linear, name=path.replace("/", "__"), no_rule=no_rule)
        result = copy(args[0]) if isinstance(copy, keras.layers.Identity) else copy(*args, **kwargs)
        layer_pairs.append((copy, layer))
        if isinstance(result, (list, tuple)):
            if len(result) != 1:
                raise ExplainError(f"Layer {path!r} has {len(result)} outputs; one is expected.")
            result = result[0]
        outputs[path] = result
        if path == tap:  # the layer's output as seen downstream: + an input of zeros, whose gradient is the output's
            tap_input = keras.Input(batch_shape=result.shape, dtype=result.dtype, name="tap")
            return keras.ops.add(result, tap_input)
        return result

    spec = model.inputs[0]
    inputs = keras.Input(batch_shape=spec.shape, dtype=spec.dtype)
    final = walk(model, inputs, call)
    if guided and no_rule:
        _warn_no_guided_rule(no_rule)
    pairs = []
    for copy, original in layer_pairs:
        if len(copy.weights) != len(original.weights):
            raise ExplainError(f"Could not copy layer {original.name!r}: its weights do not line up.")
        for c, o in zip(copy.weights, original.weights):
            if tuple(c.shape) != tuple(o.shape):
                raise ExplainError(f"Could not copy layer {original.name!r}: weight {o.path} has another shape.")
            pairs.append((c, o))
    scores = outputs[resolve_layer(model, score_layer)] if score_layer is not None else final
    return View(inputs, outputs, scores, pairs, tap=tap_input)


def _structure(model: keras.Model) -> tuple:
    """What the copy depends on besides weight values: layers, their types and activations."""
    return tuple(
        (path, id(layer), type(layer).__name__, activation_name(getattr(layer, "activation", None)))
        for path, layer in iter_layers(model)
    )


_VIEWS: weakref.WeakKeyDictionary[keras.Model, dict] = weakref.WeakKeyDictionary()


def view(model: keras.Model, guided: bool = False, score_layer: str | None = None, tap: str | None = None) -> View:
    """The flat copy of ``model`` (built once per model, structure, guided flag, score layer and tap).

    Cached graphs only: values are always read from ``model``'s variables at call time. A change
    of structure (a layer's activation swapped, say) builds a new copy. With ``tap`` (a layer path), the copy takes a
    second input of that layer's output shape, added to its output before the layers after it see it: the gradient
    with respect to that input (at zeros) is the gradient with respect to the layer's activations, on every Keras
    backend (``View.tap``).
    """
    if not isinstance(model, keras.Model):
        raise ExplainError(f"Expected a keras.Model, got {type(model).__name__}.")
    per_model = _VIEWS.setdefault(model, {})
    key = (guided, score_layer, _structure(model), tap)
    if key not in per_model:
        for stale in [k for k in per_model if k[2] != key[2]]:
            del per_model[stale]
        per_model[key] = _build_view(model, guided, score_layer, tap)
    return per_model[key]


def input_signature(model: keras.Model) -> tuple[tuple[int | None, ...], str]:
    """float32 (None, H, W, C) signature of the model's input, as ``backend.compiled`` takes it."""
    return (None, *model.inputs[0].shape[1:]), "float32"
