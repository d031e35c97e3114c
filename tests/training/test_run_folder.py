"""cardio_st.training.trainer's run-folder policy: a finished run is refused, an interrupted one is kept
for resuming, ``overwrite`` removes the previous run; and the training data's path is checked first."""

from __future__ import annotations

import pytest

from cardio_st.errors import CardioSTError
from cardio_st.training.care import ALIGN_CACHE
from cardio_st.training.trainer import check_data, is_main_process, prepare_output_dir
from cardio_st.utils.files import folder_owner


def _previous_run(folder):
    for name in ("checkpoint-3", "checkpoint-6", "final", "document-targets"):
        (folder / name).mkdir(parents=True)
        (folder / name / "weights.bin").write_bytes(b"x")
    (folder / "document-targets.json").write_text("{}")
    (folder / "notes.txt").write_text("mine")
    return folder


def test_a_new_folder_is_created_and_marked_as_a_training_run(tmp_path):
    assert prepare_output_dir(tmp_path / "run") == tmp_path / "run"
    assert folder_owner(tmp_path / "run") == "train"
    assert prepare_output_dir(tmp_path / "run") == tmp_path / "run"  # a rerun is ours


def test_a_folder_of_other_files_is_refused_and_overwrite_deletes_none_of_them(tmp_path):
    # Given a labelling run's folder (issue 18: its summary.json was overwritten by another command)
    labels = tmp_path / "labels"
    labels.mkdir()
    (labels / "summary.json").write_text('{"pairs": 120}')
    # When a training run is pointed at it, Then it is refused, naming the fix, and nothing changes
    with pytest.raises(CardioSTError, match=r"labels is not empty .*summary\.json.*`overwrite=True`"):
        prepare_output_dir(labels)
    assert sorted(p.name for p in labels.iterdir()) == ["summary.json"]
    # And with overwrite the run may write there, and the labelling file stays
    prepare_output_dir(labels, overwrite=True)
    assert (labels / "summary.json").read_text() == '{"pairs": 120}'


def test_another_commands_folder_is_refused(tmp_path):
    prepare_output_dir(tmp_path / "run", owner="care align")
    (tmp_path / "run" / "checkpoint-1").mkdir()
    with pytest.raises(CardioSTError, match=r"output folder of cardio-st care align, not of train"):
        prepare_output_dir(tmp_path / "run")


def test_a_finished_run_is_refused_naming_the_keyword(tmp_path):
    # Given a folder that holds a trained model
    run = _previous_run(tmp_path / "run")
    # When it is prepared without overwrite, Then the error names the fix as a keyword, not a flag
    with pytest.raises(
        CardioSTError, match=r"final already holds a trained model: pass `overwrite=True`"
    ) as error:
        prepare_output_dir(run)
    assert error.value.exit_code == 2 and "--overwrite" not in str(error.value)
    assert (run / "final").is_dir() and (run / "checkpoint-6").is_dir()


def test_an_interrupted_run_is_kept_for_resuming(tmp_path):
    run = tmp_path / "run"
    (run / "checkpoint-3").mkdir(parents=True)
    assert prepare_output_dir(run) == run
    assert (run / "checkpoint-3").is_dir()


def test_overwrite_removes_the_previous_run_and_the_stale_names_only(tmp_path):
    # Given a finished run with a recipe's cache beside it
    run = _previous_run(tmp_path / "run")
    # When it is prepared with overwrite and the CARE cache as stale
    assert prepare_output_dir(run, overwrite=True, stale=ALIGN_CACHE) == run
    # Then checkpoints, final and the cache are gone, and other files stay
    assert sorted(path.name for path in run.iterdir()) == [".cardio-st-folder.json", "notes.txt"]


def test_overwrite_keeps_what_is_not_named_stale(tmp_path):
    run = _previous_run(tmp_path / "run")
    prepare_output_dir(run, overwrite=True)
    assert sorted(path.name for path in run.iterdir()) == [
        ".cardio-st-folder.json",
        "document-targets",
        "document-targets.json",
        "notes.txt",
    ]


def test_only_the_main_process_removes_files(tmp_path, monkeypatch):
    run = _previous_run(tmp_path / "run")
    monkeypatch.setenv("RANK", "1")
    assert not is_main_process()
    prepare_output_dir(run, overwrite=True)
    assert (run / "final").is_dir() and (run / "checkpoint-3").is_dir()
    monkeypatch.setenv("RANK", "0")
    assert is_main_process()


def test_missing_data_is_named_as_the_keyword(tmp_path):
    (tmp_path / "pairs.parquet").write_bytes(b"")
    assert check_data(tmp_path / "pairs.parquet") == tmp_path / "pairs.parquet"
    with pytest.raises(CardioSTError, match=r"`data='.*nope'` does not exist: pass a dataset folder"):
        check_data(tmp_path / "nope")
