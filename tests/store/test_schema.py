"""cnnlib.store.schema: one record per results file, held to on every write and read."""

from __future__ import annotations

import json
import re

import pytest

from cnnlib import config
from cnnlib.store import artifacts, schema


def _outputs(tmp_path) -> artifacts.Outputs:
    return artifacts.Outputs(tuple(config.CLASSES), tmp_path)


def test_every_committed_results_file_has_exactly_its_records_keys():
    committed = artifacts.outputs_for(config.CLASSES)
    for name, record in schema.RECORDS.items():
        payload = committed.read_results(name)  # checks the keys
        assert sorted(payload) == sorted(record.keys()), name


def test_every_notebook_writes_its_results_through_a_record():
    """The notebooks pass values to a record, never a dict literal to ``write_results``; every record is used."""
    sources = {
        path.name: "".join("".join(c["source"]) for c in json.loads(path.read_text())["cells"])
        for path in sorted((config.REPO_ROOT / "notebooks").glob("*.ipynb"))
    }
    assert not [name for name, src in sources.items() if "write_results(" in src]
    for name, record in schema.RECORDS.items():
        assert re.search(rf"schema\.{record.__name__}\(", sources[record.NOTEBOOK]), (name, record.NOTEBOOK)


def test_a_record_is_written_as_its_payload_under_its_name(tmp_path):
    outputs = _outputs(tmp_path)
    record = schema.CustomSummary(best_by_val="arch2", variants=["arch1", "arch2"], tables={}, provenance={"seed": 1})
    outputs.write(record)
    assert json.loads((tmp_path / "results" / "custom_summary.json").read_text()) == record.payload()
    variant = schema.CustomVariant(variant="arch3", classes=["a", "b"], metrics={}, training={}, provenance={})
    outputs.write(variant)
    assert outputs.read_results("arch3")["variant"] == "arch3"  # a custom variant is written under its name


def test_a_payload_with_a_missing_or_unknown_key_is_refused_on_write(tmp_path):
    outputs = _outputs(tmp_path)
    payload = schema.CustomSummary(best_by_val="arch1", variants=[], tables={}, provenance={}).payload()
    del payload["tables"]
    with pytest.raises(schema.ResultsSchemaError, match=r"missing keys \['tables'\], unknown keys \[\]"):
        outputs.write_results("custom_summary", payload)
    with pytest.raises(schema.ResultsSchemaError, match=r"unknown keys \['typo'\].*02_custom_architectures"):
        outputs.write_results("custom_summary", {**payload, "tables": {}, "typo": 1})
    assert not (tmp_path / "results" / "custom_summary.json").exists()  # nothing half-written
    with pytest.raises(TypeError):
        schema.CustomSummary(best_by_val="arch1", variants=[], provenance={})  # a missing field: no record at all


def test_a_results_file_from_older_code_names_the_notebook_to_rerun(tmp_path):
    outputs = _outputs(tmp_path)
    (tmp_path / "results").mkdir()
    old = schema.Gradcam.keys()[:-1]  # written before the last field existed
    (tmp_path / "results" / "gradcam.json").write_text(json.dumps(dict.fromkeys(old, 0)))
    with pytest.raises(schema.ResultsSchemaError, match=r"gradcam\.json.*missing keys.*rerun notebooks/07_gradcam"):
        outputs.read_results("gradcam")


def test_the_results_table_and_compact_files_come_from_the_schema():
    assert artifacts.RESULTS == {name: record.NOTEBOOK for name, record in schema.RECORDS.items()}
    assert set(artifacts.COMPACT_RESULTS) == {"predictions", "sanity_per_image", "method_comparison_per_image"}
    assert all((config.REPO_ROOT / "notebooks" / notebook).is_file() for notebook in artifacts.RESULTS.values())
