"""cnnlib.methods: the method table is the one declaration of a method, and every method in it is proven.

Each compared method, built from its table entry alone (``comparison.adapter``), follows the model's current weights
(after ``set_weights`` and after ``fit``) and explains the class scores before softmax; the methods the comparison
does not run are proven the same way through their own calls. The readers of the table are listed here, and no
other module names a method.
"""

from __future__ import annotations

import ast

import keras
import numpy as np
import pytest
import small_models

from cnnlib import config, interpret, methods
from cnnlib.interpret.checks import comparison

CHEAP = dict(smooth_samples=3, ig_steps=6, scorecam_channels=6, occlusion_patch=56, occlusion_stride=56)
NOT_COMPARED = {  # the table's other methods, called directly (they give no per-image (N, H, W) map)
    "guided_grad_cam": lambda m, x: interpret.guided_grad_cam(m, x, 1),
    "activation_maximisation": lambda m, x: interpret.activation_maximisation(m, 1, steps=4)[0],
}
READERS = {  # every file that imports the method table (besides this test)
    "cnnlib/interpret/checks/comparison.py",
    "cnnlib/explore/registry.py",  # by_kind: the adapter of an entry's kind
    "cnnlib/explore/views.py",  # registers every method the explorer offers
    "cnnlib/report/method_tables.py",
    "benchmarks/bench_methods.py",
}
NAMING_METHODS = {  # files that may spell a method's display name: the table, and where a choice or prose needs it
    "cnnlib/methods.py",
    "cnnlib/explore/views.py",  # the explorer's own views of Grad-CAM and guided backprop
    "cnnlib/explore/app.py",  # the method shown first
    "cnnlib/report/method_tables.py",  # the reduced-settings sentence names the methods whose cost was cut
    "benchmarks/bench_explore.py",  # the interactions it times
    "cnnlib/explore/browser.py",  # the same interactions, timed in the browser
}


def _adapter(method: methods.MethodEntry):
    settings = dict(CHEAP, seed=0)
    return comparison.adapter(method, **{k: settings[s] for k, s in method.comparison_settings.items()})


def _explain(method: methods.MethodEntry):
    if method.compared:
        explain = _adapter(method)
        return lambda m, x: explain(m, x, np.array([0, 3]))
    return NOT_COMPARED[method.key]


def test_every_entry_names_an_interpret_function_and_a_kind():
    for method in methods.TABLE:
        assert method.key in interpret.__all__ and callable(interpret.function_of(method)), method.key
    assert len({m.name for m in methods.TABLE}) == len({m.key for m in methods.TABLE}) == len(methods.TABLE)
    assert {m.key for m in methods.TABLE if not m.compared} == set(NOT_COMPARED)
    with pytest.raises(ValueError, match="kind 'heat' is not one of"):
        methods.MethodEntry("bad", "grad_cam", "heat")
    with pytest.raises(KeyError, match="No method 'nope' in the method table; there are: Grad-CAM, "):
        methods.entry("nope")


def test_the_readers_of_the_table_are_these_and_no_other_module_names_a_method():
    names = {m.name for m in methods.TABLE if m.name != m.key}  # "saliency", "occlusion" are function names too
    readers, naming = set(), set()
    for path in sorted([*config.REPO_ROOT.joinpath("cnnlib").rglob("*.py"), *config.REPO_ROOT.glob("benchmarks/*.py")]):
        relative = path.relative_to(config.REPO_ROOT).as_posix()
        tree = ast.parse(path.read_bytes())
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.ImportFrom)
                and node.module == "cnnlib"
                and "methods" in {a.name for a in node.names}
            ):
                readers.add(relative)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in names:
                naming.add(relative)
    assert readers == READERS
    assert naming <= NAMING_METHODS, f"only the table declares methods; named in {sorted(naming - NAMING_METHODS)}"


@pytest.fixture(scope="module")
def nets():
    """Three arch2 networks built once (their views and compiled functions are reused across methods)."""
    model = small_models.project("arch2", 0)
    start = model.get_weights()
    other = small_models.project("arch2", 1)
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="sparse_categorical_crossentropy")
    return model, start, other, small_models.project("arch2", 2)


@pytest.mark.parametrize("method", methods.TABLE, ids=lambda m: m.key)
def test_every_method_follows_set_weights_and_fit(method, nets):
    explain = _explain(method)
    model, start, other, fresh = nets
    model.set_weights(start)
    x = np.random.default_rng(0).uniform(0, 255, (2, 224, 224, 3)).astype(np.float32)
    before = explain(model, x)
    model.set_weights(other.get_weights())
    after = explain(model, x)
    np.testing.assert_allclose(after, explain(other, x), rtol=1e-5, atol=1e-6 * max(np.abs(after).max(), 1e-30))
    assert not np.allclose(before, after)
    # a short fit changes the weights in place: maps must equal another model carrying them
    model.fit(x, np.array([0, 3]), epochs=1, verbose=0)
    fresh.set_weights(model.get_weights())
    ours = explain(model, x)
    np.testing.assert_allclose(ours, explain(fresh, x), rtol=1e-4, atol=1e-5 * max(np.abs(ours).max(), 1e-30))
    assert not np.allclose(ours, after)


@pytest.mark.parametrize("method", methods.compared(), ids=lambda m: m.key)
def test_every_compared_method_explains_the_scores_before_softmax(method):
    """The same weights with the softmax fused into the head, or without one: the same maps."""
    with_softmax = small_models.flat_cnn(0, shape=(32, 32, 3))
    logits = small_models.flat_cnn(0, shape=(32, 32, 3))
    logits.layers[-1].activation = keras.activations.linear
    x = np.random.default_rng(1).uniform(0, 255, (2, 32, 32, 3)).astype(np.float32)
    targets = np.array([0, 2])
    assert not np.allclose(with_softmax(x), logits(x))
    explain = comparison.adapter(method, **({"patch": 8, "stride": 8} if method.kind == "score drop" else {}))
    ours, reference = explain(with_softmax, x, targets), explain(logits, x, targets)
    assert np.abs(ours).max() > 0
    np.testing.assert_allclose(ours, reference, rtol=1e-4, atol=1e-5 * np.abs(reference).max())
