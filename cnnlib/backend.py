"""The backend layer: the few things Keras 3 does not offer across its backends, for TensorFlow, JAX and PyTorch.

Keras runs one model definition on TensorFlow, JAX or PyTorch (``KERAS_BACKEND``); what it does not abstract is
taking a gradient of a score and compiling a function that does so. This module does, it is the one place a backend
package is imported (``tests/test_backend.py`` holds every other module to that), and the methods' code, written in
``keras.ops`` on top of it, reads the same on every backend:

- ``gradient_function(fn)`` / ``gradients_per_output(fn)``: ``fn(*args) -> (value(s), aux)`` becomes
  ``(*args) -> (d value / d args[0], aux)``, or K such gradients from one forward pass (``tf.GradientTape``,
  ``jax.value_and_grad`` / ``jax.vjp``, ``torch.autograd``). Gradients with respect to a layer's activations go
  through a tap the model copy adds at that layer (``interpret.view.view(model, tap=path)``).
- ``compiled(fn, state)`` / ``compiled_call(model)``: compile once (``tf.function``, ``jax.jit``; eager on PyTorch)
  a function that computes with a model's weights, passed in as their *current* values at every call, so a compiled
  function never keeps weights it traced (JAX would otherwise bake them in as constants).
- ``resize_bilinear``, ``data_parallel`` / ``describe_parallel`` (MirroredStrategy on TensorFlow,
  ``keras.distribution.DataParallel`` on JAX), ``make_deterministic``, ``versions``, ``quiet_recompiling``,
  ``to_numpy``.

Every method runs on this layer; ``tests/test_backend.py`` checks that they give the same maps on each backend.
"""

from __future__ import annotations

import contextlib
import os
import weakref
from collections.abc import Callable, Sequence

import numpy as np

if os.environ.get("KERAS_BACKEND", "tensorflow") == "tensorflow":
    from cnnlib._tensorflow import keras  # TensorFlow first, its import-time C++ notes silenced
else:
    import keras

NAME = keras.backend.backend()  # "tensorflow", "jax" or "torch"
SUPPORTED = ("tensorflow", "jax", "torch")


def _tensorflow():
    from cnnlib._tensorflow import tf  # TensorFlow imported quietly, once

    return tf


def gradient_function(fn: Callable) -> Callable:
    """``fn(*args) -> (value, aux)`` -> ``(*args) -> (gradient of value with respect to args[0], aux)``.

    Args:
        fn: a function of backend tensors whose first output is a scalar (the sum of the scores to explain, say) and
            whose second is anything to return beside the gradient (the scores themselves).

    Returns:
        A function with ``fn``'s arguments returning (gradient of the shape of ``args[0]``, aux); not compiled (wrap
        it in ``compiled``).

    Raises:
        RuntimeError: on a Keras backend other than ``SUPPORTED``.
    """
    if NAME == "tensorflow":
        tf = _tensorflow()

        def tf_gradient(x, *rest):
            with tf.GradientTape() as tape:
                tape.watch(x)
                value, aux = fn(x, *rest)
            return tape.gradient(value, x), aux

        return tf_gradient
    if NAME == "jax":
        import jax

        def jax_gradient(x, *rest):
            (_, aux), grad = jax.value_and_grad(fn, has_aux=True)(x, *rest)
            return grad, aux

        return jax_gradient
    if NAME == "torch":
        import torch

        def torch_gradient(x, *rest):
            x = x.detach().requires_grad_(True)
            with torch.enable_grad():
                value, aux = fn(x, *rest)
            (grad,) = torch.autograd.grad(value, x)
            return grad, keras.tree.map_structure(lambda a: a.detach(), aux)

        return torch_gradient
    raise RuntimeError(f"Keras backend {NAME!r} is not supported; use one of {SUPPORTED}.")


def gradients_per_output(fn: Callable) -> Callable:
    """``fn(*args) -> (values, aux)`` with ``values`` a list of K scalars -> ``(*args) -> ([K gradients of each value
    with respect to args[0]], aux)``, from one forward pass (a persistent tape, or one ``jax.vjp``)."""
    if NAME == "tensorflow":
        tf = _tensorflow()

        def tf_gradients(x, *rest):
            with tf.GradientTape(persistent=True) as tape:
                tape.watch(x)
                values, aux = fn(x, *rest)
            return [tape.gradient(v, x) for v in values], aux

        return tf_gradients
    if NAME == "jax":
        import jax
        import jax.numpy as jnp

        def jax_gradients(x, *rest):
            values, pullback, aux = jax.vjp(lambda v: fn(v, *rest), x, has_aux=True)
            grads = []
            for k in range(len(values)):
                (grad,) = pullback([jnp.ones_like(v) if j == k else jnp.zeros_like(v) for j, v in enumerate(values)])
                grads.append(grad)
            return grads, aux

        return jax_gradients
    if NAME == "torch":
        import torch

        def torch_gradients(x, *rest):
            x = x.detach().requires_grad_(True)
            with torch.enable_grad():
                values, aux = fn(x, *rest)
            grads = [torch.autograd.grad(v, x, retain_graph=True)[0] for v in values]
            return grads, keras.tree.map_structure(lambda a: a.detach(), aux)

        return torch_gradients
    raise RuntimeError(f"Keras backend {NAME!r} is not supported; use one of {SUPPORTED}.")


def compiled(
    fn: Callable,
    state: Sequence[tuple[keras.Variable, keras.Variable]],
    signature: Sequence[tuple[Sequence[int | None], str]] | None = None,
) -> Callable:
    """Compile ``fn(*args)``, which runs a model copy, to compute with the original weights' current values.

    Args:
        fn: a function of backend tensors that calls layers whose variables are the first element of each pair in
            ``state`` (a ``view.View``'s copy).
        state: (copy variable, original variable) pairs; every call maps each copy variable onto the original's value
            at that moment (``keras.StatelessScope``), so training or ``set_weights`` shows at the next call.
        signature: (shape, dtype) of each argument, None for a free dimension (the batch): TensorFlow traces once for
            it instead of once per batch size; JAX traces per shape anyway.

    Returns:
        ``(*args) -> fn(*args)`` over NumPy or backend inputs, compiled once: ``tf.function`` on TensorFlow (the
        variables are read inside the graph), ``jax.jit`` on JAX (their values are passed in at each call), eager on
        PyTorch (the arguments made tensors, under ``torch.no_grad``).
    """
    copies = [c for c, _ in state]

    def with_values(values, *args):
        with keras.StatelessScope(state_mapping=list(zip(copies, values))):
            return fn(*args)

    if NAME == "tensorflow":
        tf = _tensorflow()
        specs = None if signature is None else [tf.TensorSpec(list(shape), dtype) for shape, dtype in signature]
        return tf.function(lambda *args: with_values([o.value for _, o in state], *args), input_signature=specs)
    if NAME == "jax":
        import jax

        jitted = jax.jit(with_values)
        return lambda *args: jitted([o.value for _, o in state], *args)
    if NAME != "torch":
        raise RuntimeError(f"Keras backend {NAME!r} is not supported; use one of {SUPPORTED}.")
    import torch

    def eager(*args):
        with torch.no_grad():  # no autograd graph for a forward pass; gradient functions re-enable it inside
            return with_values([o.value for _, o in state], *(keras.ops.convert_to_tensor(a) for a in args))

    return eager


@contextlib.contextmanager
def quiet_recompiling():
    """Within the block, TensorFlow's "retracing" warnings are muted (compiling one function per model copy is
    expected there); a no-op on the other backends."""
    if NAME != "tensorflow":
        yield
        return
    logger = _tensorflow().get_logger()
    level = logger.level
    logger.setLevel("ERROR")
    try:
        yield
    finally:
        logger.setLevel(level)


def resize_bilinear(images: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize with half-pixel centres and no antialiasing, as ``tf.image.resize(method="bilinear")``:
    (..., h, w, C) -> (..., H, W, C) float32 NumPy (``keras.ops.image.resize``: that very call on TensorFlow,
    ``jax.image.resize`` on JAX, whose weights agree for upsampling)."""
    resized = keras.ops.image.resize(np.asarray(images, np.float32), size, interpolation="bilinear", antialias=False)
    return to_numpy(resized).astype(np.float32)


def compiled_call(model: keras.Model) -> Callable:
    """``model(x, training=False)`` compiled once for float32 (N, *input shape) batches, reading the model's current
    weights at every call; the function holds the model only weakly (it cannot keep a model alive)."""
    of = weakref.ref(model)
    shape = [None, *model.input.shape[1:]]
    if NAME == "tensorflow":
        tf = _tensorflow()
        return tf.function(lambda batch: of()(batch, training=False), input_signature=[tf.TensorSpec(shape, "float32")])
    return compiled(lambda batch: of()(batch, training=False), [(v, v) for v in model.variables])


def versions() -> dict[str, str]:
    """{backend package: its version} (e.g. {"tensorflow": "2.21.0"}): what cache keys and results record."""
    if NAME == "tensorflow":
        return {"tensorflow": _tensorflow().__version__}
    module = __import__(NAME)
    return {NAME: module.__version__}


def make_deterministic() -> None:
    """Same inputs, same bits on this machine: TensorFlow's deterministic ops (``enable_op_determinism``); JAX and
    PyTorch on CPU are deterministic already."""
    if NAME == "tensorflow":
        _tensorflow().config.experimental.enable_op_determinism()
    elif NAME == "torch":
        import torch

        torch.use_deterministic_algorithms(True)


class _OneDevice:
    """The no-op distribution: one device, the usual code path."""

    def scope(self):
        return contextlib.nullcontext()


def data_parallel(devices: Sequence[str] | None = None):
    """What training runs under: one model replica per accelerator when there are several, else a no-op.

    TensorFlow: ``tf.distribute.MirroredStrategy`` over ``devices`` (default: every GPU, when >= 2), else the default
    strategy. JAX: ``keras.distribution.DataParallel`` over every device when there are >= 2. Use as
    ``with data_parallel().scope():`` around building and compiling the model.
    """
    if NAME == "tensorflow":
        tf = _tensorflow()
        if devices is None:
            gpus = tf.config.list_logical_devices("GPU")
            devices = [d.name for d in gpus] if len(gpus) > 1 else None
        if devices and len(devices) > 1:
            return tf.distribute.MirroredStrategy(list(devices))
        return tf.distribute.get_strategy()
    if NAME == "jax":
        listed = keras.distribution.list_devices() if devices is None else list(devices)
        if len(listed) > 1:
            return keras.distribution.DataParallel(devices=listed)
    return _OneDevice()


def describe_parallel(active) -> str:
    """e.g. 'MirroredStrategy over 2 devices', 'DataParallel over 4 devices' or 'default (one device)'."""
    if NAME == "tensorflow" and isinstance(active, _tensorflow().distribute.MirroredStrategy):
        return f"MirroredStrategy over {active.num_replicas_in_sync} devices"
    if isinstance(active, keras.distribution.DataParallel):
        return f"DataParallel over {len(active.device_mesh.devices.ravel())} devices"
    return "default (one device)"


def to_numpy(value) -> np.ndarray:
    """A backend tensor (or a NumPy array) as a NumPy array."""
    return keras.ops.convert_to_numpy(value)
