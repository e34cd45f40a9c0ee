"""VGG19 transfer learning: weights with honest provenance, a flat classifier, cached features.

Weights, chosen by ``CNNLIB_VGG19_WEIGHTS``:

- unset: ``weights="imagenet"`` through Keras's own download and cache (needs internet once);
- a path: a local ``vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5`` (or any VGG19 notop
  weights file); its MD5 is compared with the hash Keras publishes for the ImageNet file;
- ``random``: explicit opt-in to random initialisation (seeded), a clearly labelled fallback.

Anything else, or a failed download, raises ``WeightsUnavailable`` saying how to fix it.
The classifier is one functional model (base layers, then ``flatten`` -> ``logits`` ->
``predictions``) so ``block5_conv4`` is reachable directly for Grad-CAM and guided backprop.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from cnnlib import backend, config
from cnnlib.backend import keras
from cnnlib.models import distribute, feature_cache
from cnnlib.models.forward import compiled_forward, in_fixed_batches
from cnnlib.models.training import cached_training, compile_model, fit, set_seed
from cnnlib.store.files import file_digest, file_sha256

ENV_VAR = "CNNLIB_VGG19_WEIGHTS"
IMAGENET_NOTOP_MD5 = "253f8cb515780f3b799900260a226db6"  # Keras's published hash of the notop file
IMAGENET_NOTOP_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
PREPROCESSING = "keras.applications.vgg19.preprocess_input (RGB->BGR, ImageNet mean subtracted, no scaling)"
HEAD = "flatten (7x7x512 = 25088) -> dense logits -> softmax"
GFLOP_PER_IMAGE = 39.3  # multiply-adds x 2 of the VGG19 conv base at 224 x 224 (19.6 GMAC)

Arrays = dict[str, tuple[np.ndarray, np.ndarray]]


class WeightsUnavailable(RuntimeError):
    """The requested VGG19 weights cannot be loaded; the message says how to provide them."""


@dataclass(frozen=True)
class WeightsInfo:
    """Which weights a VGG19 run used: stated in results, figure titles and the report."""

    source: str  # "imagenet", "file" or "random"
    label: str  # short human-readable label for titles, e.g. "ImageNet" or "RANDOM INIT (seed 42)"
    is_imagenet: bool  # True only when the bytes are verifiably Keras's ImageNet file
    sha256: str | None = None  # of the weights file, when there is one
    path: str | None = None
    seed: int | None = None

    def as_dict(self) -> dict:
        return asdict(self)

    def banner(self) -> str:
        """What a notebook prints first: the weights, and a loud warning when they are not ImageNet."""
        if self.is_imagenet:
            return f"VGG19 weights used: {self.label}"
        return (
            f"VGG19 weights used: {self.label}\n" + "!" * 78 + "\n!! NOT IMAGENET WEIGHTS: every VGG19 number "
            "and figure below is a fallback result.\n!! Set CNNLIB_VGG19_WEIGHTS to the ImageNet notop file, "
            "or run with internet access.\n" + "!" * 78
        )


_HOW_TO = (
    f"Provide the VGG19 weights in one of three ways: (1) run with internet access once, so Keras "
    f"downloads and caches ImageNet weights in ~/.keras/models/; (2) set {ENV_VAR}=/path/to/"
    f"{IMAGENET_NOTOP_FILE}; (3) set {ENV_VAR}=random to run with random initial weights - a "
    "clearly labelled fallback whose results are NOT ImageNet results."
)


def load_base(
    env: Mapping[str, str] | None = None, seed: int = config.SEED, image_size: int = config.IMAGE_SIZE
) -> tuple[keras.Model, WeightsInfo]:
    """The VGG19 convolutional base (16 conv + 5 max-pool layers) and the weights it carries."""
    env = os.environ if env is None else env
    setting = env.get(ENV_VAR, "").strip()
    if ENV_VAR in env and not setting:
        raise WeightsUnavailable(f"{ENV_VAR} is set but empty. Unset it for ImageNet, or {_HOW_TO}")
    shape = (image_size, image_size, 3)
    if setting.lower() == "random":
        set_seed(seed)
        base = keras.applications.VGG19(include_top=False, weights=None, input_shape=shape)
        return base, WeightsInfo("random", f"RANDOM INIT (seed {seed}), not ImageNet", False, seed=seed)
    if setting:
        path = Path(setting).expanduser()
        if not path.is_file():
            raise WeightsUnavailable(f"{ENV_VAR}={setting!r}: no such file. {_HOW_TO}")
        try:
            base = keras.applications.VGG19(include_top=False, weights=str(path), input_shape=shape)
        except (ValueError, OSError) as exc:
            raise WeightsUnavailable(
                f"{ENV_VAR}={setting!r} is not a VGG19 notop weights file ({exc}). {_HOW_TO}"
            ) from exc
        is_imagenet = file_digest(path, "md5") == IMAGENET_NOTOP_MD5
        label = "ImageNet (local file)" if is_imagenet else f"local weights file {path.name} (not the ImageNet file)"
        return base, WeightsInfo("file", label, is_imagenet, sha256=file_sha256(path), path=str(path))
    try:
        base = keras.applications.VGG19(include_top=False, weights="imagenet", input_shape=shape)
    except Exception as exc:  # noqa: BLE001 - any download failure gets the same guidance
        raise WeightsUnavailable(f"Could not download the ImageNet weights for VGG19 ({exc}). {_HOW_TO}") from exc
    cached = Path(keras.src.backend.config.keras_home()) / "models" / IMAGENET_NOTOP_FILE  # Keras's cache
    sha = file_sha256(cached) if cached.is_file() else None
    return base, WeightsInfo("imagenet", "ImageNet", True, sha256=sha, path=str(cached) if sha else None)


def preprocess(images: np.ndarray) -> np.ndarray:
    """uint8 RGB (N, H, W, 3) -> float32 VGG19 input (BGR, ImageNet mean subtracted)."""
    return keras.applications.vgg19.preprocess_input(np.asarray(images, dtype=np.float32).copy())


def build_head(feature_shape: tuple[int, ...], n_classes: int) -> keras.Model:
    """The new classification layer on cached base features: flatten -> logits -> softmax."""
    inputs = keras.Input(feature_shape, name="features")
    x = keras.layers.Flatten(name="flatten")(inputs)
    logits = keras.layers.Dense(n_classes, name="logits")(x)
    return keras.Model(inputs, keras.layers.Activation("softmax", name="predictions")(logits), name="vgg19_head")


def build_classifier(base: keras.Model, head: keras.Model) -> keras.Model:
    """One flat functional model: the base's layers, then fresh head layers carrying the head's weights.

    Fresh layers (not the head's own) keep every layer with a single call site, so
    ``model.get_layer("logits").output`` is connected to the image input, as Grad-CAM needs.
    """
    logits_src = head.get_layer("logits")
    x = keras.layers.Flatten(name="flatten")(base.output)
    dense = keras.layers.Dense(logits_src.units, name="logits")
    logits = dense(x)
    dense.set_weights(logits_src.get_weights())
    outputs = keras.layers.Activation("softmax", name="predictions")(logits)
    return keras.Model(base.input, outputs, name="vgg19")


def features_identity(weights: WeightsInfo, base: keras.Model) -> str:
    """The feature cache's key for ``base`` (see ``feature_cache.identity_key``): weights, preprocessing,
    output layer and input size."""
    return feature_cache.identity_key(
        "cnnlib.models.vgg19",
        weights=weights.sha256 or f"{weights.source}-seed{weights.seed}",
        preprocessing=PREPROCESSING,
        layer=base.layers[-1].name,
        input_shape=list(base.input.shape[1:]),
        model="vgg19_notop",
    )


def extract_features(base: keras.Model, images: np.ndarray, batch_size: int = 8, desc: str = "") -> np.ndarray:
    """Frozen-base features for uint8 images, batched with a progress bar: float32 (N, 7, 7, 512)."""
    forward = compiled_forward(base)
    out = []
    batches = range(0, len(images), batch_size)
    for start in tqdm(batches, desc=desc or "VGG19 features", leave=False, disable=None):  # no bar off a terminal
        batch = images[start : start + batch_size]
        out.append(np.asarray(in_fixed_batches(lambda b: forward(preprocess(b)), batch), dtype=np.float32))
    return np.concatenate(out)


def cached_features(
    base: keras.Model, weights: WeightsInfo, arrays: Arrays, split_key: str | None = None, batch_size: int = 8
) -> Arrays:
    """``extract_features`` for every split, through the per-image cache (``cnnlib.models.feature_cache``).

    An image already seen in any split, split seed or class list (same pixels, weights, preprocessing
    and size) is read, not recomputed; the features are bit-identical to ``extract_features``.
    ``split_key`` is no longer part of the key (kept so existing calls work).
    """
    identity = features_identity(weights, base)
    forward = compiled_forward(base)
    shape = tuple(base.output.shape[1:])
    features = {}
    for split, (x, y) in arrays.items():
        values, _ = feature_cache.cached_image_features(
            lambda batch: forward(preprocess(batch)), identity, x, shape, batch_size, f"VGG19 features ({split})"
        )
        features[split] = (values, y)
    return features


def train_head(
    features: Arrays, settings: config.TrainSettings, n_classes: int, seed: int = config.SEED
) -> tuple[keras.Model, dict]:
    """Train the new classification layer on cached features (Table 2 settings, early stopping)."""
    set_seed(seed)
    with distribute.strategy().scope():  # several GPUs: MirroredStrategy; else a no-op
        head = compile_model(build_head(features["train"][0].shape[1:], n_classes), settings)
    return head, fit(head, features, settings)


def fine_tune_block5(
    model: keras.Model, arrays: Arrays, settings: config.TrainSettings, learning_rate: float = 1e-5
) -> dict:
    """Optional second stage: unfreeze block5 (and the head), train end to end on raw images.

    Costs a full VGG19 forward and a block5 backward pass per image per epoch, so it is off
    by default on CPU. Returns the training record of ``training.fit``.
    """
    for layer in model.layers:
        layer.trainable = layer.name.startswith("block5") or layer.name in ("flatten", "logits", "predictions")
    compile_model(model, settings.__class__(**{**asdict(settings), "learning_rate": learning_rate}))
    prepared = {s: (preprocess(x), y) for s, (x, y) in arrays.items()}
    return fit(model, prepared, settings)


@dataclass
class VGG19Run:
    """Everything one VGG19 transfer-learning run produced."""

    model: keras.Model  # flat classifier: preprocessed image -> class probabilities
    head: keras.Model  # the trained new layer alone: cached features -> class probabilities
    weights: WeightsInfo
    features: Arrays  # {split: (features (N, 7, 7, 512), labels (N,))}
    record: dict  # training record of the head (epochs, history)


def fit_classifier(
    arrays: Arrays,
    split_key: str,
    settings: config.TrainSettings,
    seed: int = config.SEED,
    n_classes: int = len(config.CLASSES),
    env: Mapping[str, str] | None = None,
    weights_seed: int | None = None,
    cache: bool = True,
) -> VGG19Run:
    """The whole recipe: load weights, cached features, train the head, assemble the flat model.

    ``seed`` initialises the head; ``weights_seed`` (default: ``seed``) seeds the random-init
    fallback's base, so several head seeds can share one fallback base. With ``cache`` the trained
    head is stored in the model cache (``training.cached_training``), keyed by the features' identity,
    the split (``split_key``), the seed, the settings and the versions.
    """
    base, weights = load_base(
        env, seed=seed if weights_seed is None else weights_seed, image_size=arrays["train"][0].shape[1]
    )
    features = cached_features(base, weights, arrays, split_key)
    if not cache:
        head, record = train_head(features, settings, n_classes, seed)
    else:
        recipe = {
            "head": HEAD,
            "features": features_identity(weights, base),
            "data": split_key,
            "seed": seed,
            "n_classes": n_classes,
            "settings": asdict(settings),
            **backend.versions(),
        }
        key = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]
        head, record = cached_training(f"vgg19_head_{key}", lambda: train_head(features, settings, n_classes, seed))
    return VGG19Run(build_classifier(base, head), head, weights, features, record)
