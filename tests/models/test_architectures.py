"""cnnlib.models.architectures: one declaration -> Keras model and Tables 3-5, which must agree."""

from __future__ import annotations

import numpy as np
import pytest

from cnnlib.models import architectures as arch

# Output widths of Tables 3-5 of the reference (which are correct; only a calculation string was wrong).
REFERENCE_OUTPUTS = {
    "arch1": ["54x54x8", "26x26x8", "22x22x16", "10x10x16"],
    "arch2": ["54x54x8", "26x26x8", "22x22x16", "10x10x16", "8x8x32", "3x3x32"],
    "arch3": ["54x54x8", "26x26x8", "22x22x16", "10x10x16", "8x8x32", "6x6x64", "2x2x64"],
}


@pytest.mark.parametrize("name", list(arch.ARCHITECTURES))
def test_table_rows_equal_keras_output_shapes_and_params(name):
    model = arch.build_model(name, n_classes=5)
    table = arch.feature_map_table(name, n_classes=5)
    for row in table.itertuples():
        layer = model.get_layer(row.layer)
        shape = layer.output.shape[1:]
        assert "x".join(str(d) for d in shape) == row.output, row.layer
        assert layer.count_params() == row.params, row.layer
    assert table["params"].sum() == model.count_params()
    assert table["output"].tolist()[: len(REFERENCE_OUTPUTS[name])] == REFERENCE_OUTPUTS[name]


def test_calculation_column_has_correct_arithmetic():
    table = arch.feature_map_table("arch3").set_index("layer")
    # The reference printed (16 - 3 + 0)/1 + 1 = 8 here; the input is 10 wide.
    assert table.loc["conv3", "calculation"] == "(10 - 3 + 2*0)/1 + 1 = 8"
    assert table.loc["conv1", "calculation"] == "floor((224 - 11 + 2*0)/4) + 1 = 54"
    for row in table.itertuples():
        if row.op in ("conv", "max pool"):
            expression, result = row.calculation.replace("floor", "").split(" = ")
            assert int(eval(expression.replace("/", "//"))) == int(result)  # noqa: S307 - our own digits


def test_same_padding_and_generic_class_count():
    specs = (arch.LayerSpec("conv", 3, 2, 4, "same"), arch.LayerSpec("pool", 2, 2))
    model = arch.build_model(specs, n_classes=3, image_size=33)
    table = arch.feature_map_table(specs, n_classes=3, image_size=33)
    assert table.loc[0, "output"] == "17x17x4" and model.get_layer("conv1").output.shape[1:] == (17, 17, 4)
    assert model.output.shape[-1] == 3


def test_model_outputs_probabilities_and_has_logits_layer():
    model = arch.build_model("arch1", n_classes=4)
    probs = model.predict(np.zeros((2, 224, 224, 3), np.uint8), verbose=0)
    assert probs.shape == (2, 4)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    assert model.get_layer("logits").activation.__name__ == "linear"


def test_variants_reference_earlier_sources():
    seen = []
    for variant, (architecture, source) in arch.VARIANTS.items():
        assert architecture in arch.ARCHITECTURES
        assert source is None or source in seen
        seen.append(variant)
