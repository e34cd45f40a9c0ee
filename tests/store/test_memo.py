"""cnnlib.store.memo: a result is read back only for the same code, inputs, weights and settings."""

from __future__ import annotations

import numpy as np
import pytest

from cnnlib import backend, config
from cnnlib.models import architectures, training
from cnnlib.store import memo

CALLS: list[tuple] = []


def _mean_plus(x: np.ndarray, offset: float = 0.0) -> float:
    CALLS.append((x.shape, offset))
    return float(x.mean() + offset)


def _apply(fn, x):
    return fn(x)


def _scaled(factor: float):
    def scale(x):
        return x * factor

    return scale


def _predict_sum(model, x):
    CALLS.append("model")
    return float(backend.to_numpy(model(x)).sum())


@pytest.fixture(autouse=True)
def _fresh_calls():
    CALLS.clear()


def test_same_call_is_read_back_and_any_changed_input_recomputes():
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    assert memo.call(_mean_plus, x, offset=1.0) == memo.call(_mean_plus, x, offset=1.0) == x.mean() + 1
    assert len(CALLS) == 1  # the second call was read back
    y = x.copy()
    y[0, 0] = 0.5  # one value differs
    memo.call(_mean_plus, y, offset=1.0)
    memo.call(_mean_plus, x, offset=2.0)  # another keyword value
    memo.call(_mean_plus, x.astype(np.float64), offset=1.0)  # another dtype
    assert len(CALLS) == 4
    assert len(list(config.cache_dir().glob("results/*/*.pkl"))) == 4


def test_closures_are_keyed_by_the_values_they_capture():
    x = np.ones(3)
    np.testing.assert_array_equal(memo.call(_apply, _scaled(2.0), x), 2 * x)
    np.testing.assert_array_equal(memo.call(_apply, _scaled(3.0), x), 3 * x)  # not the 2.0 result


def test_models_are_keyed_by_their_weights():
    training.set_seed(0)
    model = architectures.build_model("arch1", n_classes=2)
    x = np.random.default_rng(0).uniform(0, 255, (1, 224, 224, 3)).astype(np.float32)
    first = memo.call(_predict_sum, model, x)
    assert memo.call(_predict_sum, model, x) == first and CALLS.count("model") == 1
    logits = model.get_layer("logits")
    logits.set_weights([w + 1 for w in logits.get_weights()])
    memo.call(_predict_sum, model, x)
    assert CALLS.count("model") == 2  # new weights: computed again


def test_a_code_change_is_a_new_key(monkeypatch):
    x = np.zeros(2)
    memo.call(_mean_plus, x)
    monkeypatch.setattr(memo, "code_digest", lambda: "edited")
    memo.call(_mean_plus, x)
    assert len(CALLS) == 2


def test_code_digest_follows_code_not_comments_docstrings_or_formatting(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    module = package / "m.py"

    def digest_of(source: str) -> str:
        module.write_text(source)
        return memo.code_digest(package)

    base = digest_of('"""Doc."""\n\ndef f(x):\n    """Doc."""\n    return x + 1\n')
    assert digest_of('"""Other doc."""\n\n\ndef f(x):  # a comment\n    """More."""\n    return (x + 1)\n') == base
    assert digest_of("def f(x):\n    return x + 1\n") == base  # no docstrings at all
    assert digest_of('"""Doc."""\n\ndef f(x):\n    return x + 2\n') != base  # a constant
    assert digest_of('"""Doc."""\n\ndef f(y):\n    return y + 1\n') != base  # a name
    assert digest_of('"""Doc."""\n\ndef f(x):\n    """Doc."""\n') != base  # a body reduced to its docstring
    assert digest_of("def f(x):\n    return x + 1\n") == base
    (package / "n.py").write_text("")
    assert memo.code_digest(package) != base  # a new file


def test_switch_off_unreadable_files_and_unknown_values(monkeypatch):
    x = np.zeros(2)
    memo.call(_mean_plus, x)
    (path,) = config.cache_dir().glob("results/*/*.pkl")
    path.write_bytes(b"truncated")
    assert memo.call(_mean_plus, x) == 0.0 and len(CALLS) == 2  # recomputed, not trusted
    monkeypatch.setenv("CNNLIB_MEMO", "0")
    memo.call(_mean_plus, x)
    assert len(CALLS) == 3
    monkeypatch.delenv("CNNLIB_MEMO")
    with pytest.raises(TypeError, match="cannot fingerprint"):
        memo.call(_mean_plus, x, offset=object())
