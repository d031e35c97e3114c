"""cardio_st.utils.files.claim_folder: the output-folder policy every writing command shares -- new, empty
and own folders accepted, anything else refused unless overwrite, which deletes nothing."""

from __future__ import annotations

import json

import pytest

from cardio_st.errors import CardioSTError
from cardio_st.utils.files import FOLDER_MARKER, claim_folder, folder_owner


def _contents(folder):
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.name != FOLDER_MARKER}


def test_a_new_or_empty_folder_is_created_and_marked(tmp_path):
    out = claim_folder(tmp_path / "a" / "b", owner="prepare")
    assert out.is_dir() and folder_owner(out) == "prepare" and _contents(out) == {}
    (tmp_path / "empty").mkdir()
    assert folder_owner(claim_folder(tmp_path / "empty", owner="label")) == "label"


def test_a_rerun_of_the_same_command_is_accepted_another_commands_folder_is_not(tmp_path):
    out = claim_folder(tmp_path / "out", owner="prepare")
    (out / "paraphrases.jsonl").write_text("{}\n")
    assert claim_folder(out, owner="prepare") == out
    with pytest.raises(
        CardioSTError, match=r"output folder of cardio-st prepare, not of label.*`overwrite=True`"
    ):
        claim_folder(out, owner="label")
    with pytest.raises(CardioSTError, match="an earlier run of this command"):
        claim_folder(out, owner="prepare", resume=False)


def test_a_foreign_folder_is_refused_untouched_and_overwrite_deletes_nothing(tmp_path):
    # Given a folder holding a labelling run's summary and a file of the user's
    folder = tmp_path / "labels"
    folder.mkdir()
    (folder / "summary.json").write_text(json.dumps({"judges": {}}))
    (folder / "notes.txt").write_text("mine")
    before = _contents(folder)
    # When prepare claims it, Then it is refused in one line naming the folder and the fix
    with pytest.raises(CardioSTError) as error:
        claim_folder(folder, owner="prepare")
    message = str(error.value)
    assert "\n" not in message and str(folder) in message and "`overwrite=True`" in message
    assert "notes.txt" in message and not (folder / FOLDER_MARKER).exists() and _contents(folder) == before
    # With overwrite it is claimed and every file stays
    assert claim_folder(folder, owner="prepare", overwrite=True) == folder
    assert _contents(folder) == before and folder_owner(folder) == "prepare"


def test_an_earlier_versions_folder_is_recognised_and_a_file_is_refused(tmp_path):
    folder = tmp_path / "old"
    folder.mkdir()
    (folder / "paraphrases.jsonl").write_text('{"format": 1, "paraphraser": "x"}\n')
    assert claim_folder(folder, owner="prepare", recognise=lambda f: (f / "paraphrases.jsonl").is_file())
    assert folder_owner(folder) == "prepare"
    (tmp_path / "file").write_text("x")
    with pytest.raises(CardioSTError, match="is a file, not a folder"):
        claim_folder(tmp_path / "file", owner="prepare", overwrite=True)


def test_export_overwrite_writes_into_a_non_empty_folder_and_deletes_nothing(tmp_path):
    from typer.testing import CliRunner

    from cardio_st.cli import app

    out = tmp_path / "model"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    runner = CliRunner()
    refused = runner.invoke(app, ["export", "minilm", str(out)])
    assert refused.exit_code == 2 and not (out / "modules.json").exists()
    result = runner.invoke(app, ["export", "minilm", str(out), "--overwrite"])
    assert result.exit_code == 0, result.output
    assert (out / "modules.json").is_file() and (out / "notes.txt").read_text() == "mine"
