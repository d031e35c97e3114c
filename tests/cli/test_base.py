"""cardio-st's shared command-line behaviour: instant --help, one-line errors with flags, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys

from typer.testing import CliRunner

import cardio_st.hub.push
from cardio_st.cli import app
from cardio_st.cli.base import cli_message
from cardio_st.errors import CardioSTError

runner = CliRunner()


def _cli(*args: str, env: dict | None = None, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cardio_st.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=600,
        **kwargs,
    )


def test_help_does_not_import_torch():
    code = (
        "import sys\n"
        "from cardio_st.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "search" in result.stdout and result.stdout.strip().endswith("NO-TORCH")


def test_errors_from_the_installed_entry_point_have_no_traceback(tmp_path):
    (tmp_path / "not-a-model").mkdir()
    result = _cli("search", "angina", "--model", str(tmp_path / "not-a-model"))
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"error: {tmp_path / 'not-a-model'} is a folder but not a model: it has no modules.json "
        "(sentence-transformers) or config.json (Hugging Face); pass the folder a model was saved to"
    )


def test_library_keywords_are_shown_as_flags(monkeypatch):
    # Given a library error that names its fix as a Python keyword
    def check_repo_id(repo_id):
        raise CardioSTError("a local base needs its Hub id: pass `base_model_id='org/name'`")

    monkeypatch.setattr(cardio_st.hub.push, "check_repo_id", check_repo_id)
    # When a command meets it, Then the user reads the flag, not the keyword
    result = runner.invoke(app, ["push", "some/folder", "org/repo"])
    assert result.exit_code == 2
    assert result.stderr.strip() == "error: a local base needs its Hub id: pass --base-model-id org/name"
    assert "--base-model-id org/name" in result.stderr and "base_model_id=" not in result.stderr


def test_cli_message_uses_each_commands_flags():
    assert cli_message("rerun with `overwrite=True`") == "rerun with --overwrite"
    assert cli_message("pass `output_dir='runs/b'`") == "pass --out runs/b"
    assert cli_message("pass `resume=False` to start over") == "pass --overwrite to start over"
    assert (
        cli_message("give `max_seq_length=64`", {"max_seq_length": "--max-length"})
        == "give --max-length 64"
    )
