"""cardio_st.training.care's cache of document targets: checksummed when written, verified when reused,
and computed again (with a warning) when damaged, never trained on as they are."""

from __future__ import annotations

import logging
import shutil

import numpy as np
import pytest
from datasets import Dataset, DatasetDict

from cardio_st.models.care import care_model, care_router
from cardio_st.training import care as care_module
from cardio_st.training.care import ALIGN_CACHE
from cardio_st.utils.integrity import write_manifest

ROWS = {
    "anchor": ["heart attack", "high blood pressure", "irregular heartbeat", "heart failure"],
    "positive": [
        "Acute myocardial infarction",
        "Essential (primary) hypertension",
        "Atrial fibrillation",
        "Heart failure, unspecified",
    ],
}


@pytest.fixture
def targets(tiny_qwen3, minilm, tmp_path, monkeypatch):
    """``targets()`` returns the document targets for ROWS in ``tmp_path`` and how many times they were
    computed so far."""
    import cardio_st.losses.asym_info_nce_mse as losses

    model = care_model(tiny_qwen3, minilm, bridge="truncate", device="cpu")
    data = DatasetDict({"train": Dataset.from_dict(ROWS)})
    computed = []
    real = losses.add_document_targets
    monkeypatch.setattr(losses, "add_document_targets", lambda *a, **k: computed.append(1) or real(*a, **k))

    def get():
        found = care_module._document_targets(model, care_router(model), data, tmp_path, batch_size=4)
        return np.asarray(found.with_format("numpy")["label"]), len(computed)

    return get


def _arrow_file(tmp_path):
    return next((tmp_path / ALIGN_CACHE[0]).glob("*.arrow"))


def test_damaged_document_targets_are_computed_again(targets, tmp_path, caplog):
    labels, computed = targets()
    assert computed == 1 and targets()[1] == 1  # reused when intact
    # Given one flipped byte in the cached targets' Arrow file (the old code trained on it as it was)
    arrow = _arrow_file(tmp_path)
    data = bytearray(arrow.read_bytes())
    data[-200] ^= 0x08
    arrow.write_bytes(bytes(data))
    # When the targets are needed again, then the damage is named and they are computed again
    with caplog.at_level(logging.WARNING, logger="cardio_st"):
        again, computed = targets()
    assert computed == 2 and "document targets" in caplog.text and "are damaged (" in caplog.text
    np.testing.assert_array_equal(again, labels)
    # Given a truncated file, likewise
    arrow = _arrow_file(tmp_path)
    arrow.write_bytes(arrow.read_bytes()[:100])
    assert targets()[1] == 3


def test_non_finite_document_targets_are_computed_again(targets, tmp_path, caplog):
    from datasets import load_from_disk

    labels, _ = targets()
    # Given targets with a NaN written as such (matching checksums: a faulty writer, not a damaged disk)
    folder = tmp_path / ALIGN_CACHE[0]
    broken = labels.copy()
    broken[1, 0, 0] = np.nan
    dataset = load_from_disk(str(folder))
    columns = {name: dataset[name] for name in dataset.column_names if name != "label"}
    bad = Dataset.from_dict({**columns, "label": broken.tolist()}, features=dataset.features)
    bad.save_to_disk(str(tmp_path / "bad"))
    del dataset
    shutil.rmtree(folder)
    shutil.move(tmp_path / "bad", folder)
    write_manifest(folder)
    # When they are needed again, then they are computed again
    with caplog.at_level(logging.WARNING, logger="cardio_st"):
        again, computed = targets()
    assert computed == 2 and "NaN or infinite" in caplog.text
    np.testing.assert_array_equal(again, labels)
