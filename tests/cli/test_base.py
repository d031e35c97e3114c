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
        cli_message("give `max_seq_length=64`", {"max_seq_length": "--max-length"}) == "give --max-length 64"
    )


# ----------------------------------------------------------- first contact (issue 18, items 6 and 7)

_ROW = b'{"anchor": "a", "positive": "b", "text": "a"}\n'
BAD_FILES = {
    "malformed.jsonl": _ROW * 2 + b"{oops\n",
    "latin1.jsonl": _ROW + b'{"anchor": "caf\xe9", "positive": "d", "text": "c"}\n',
    "typed.jsonl": _ROW + b'{"anchor": 7, "positive": "d", "text": 7}\n',
}
WHERE = {
    "malformed.jsonl": "line 3: not JSON",
    "latin1.jsonl": "line 2: not UTF-8",
    "typed.jsonl": "line 2: column",
}


def _one_line(result, *fragments: str) -> None:
    assert result.exit_code == 2, result.output
    errors = [line for line in result.stderr.splitlines() if not line.startswith("note: ")]
    assert len(errors) == 1 and errors[0].startswith("error: "), result.output
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in errors[0], result.stderr


def test_train_with_a_bad_or_empty_pairs_file_is_one_line_before_the_model_loads(tmp_path, monkeypatch):
    import cardio_st.training.recipes

    def no_model(*args, **kwargs):
        raise AssertionError("the model was built before the data was read")

    monkeypatch.setattr(cardio_st.training.recipes, "cardioembed", no_model)
    (tmp_path / "empty.jsonl").write_text("")
    for name, content in {**BAD_FILES, "empty.jsonl": b""}.items():
        (tmp_path / name).write_bytes(content)
        result = runner.invoke(
            app, ["train", "--base", "minilm", "--data", str(tmp_path / name), "--out", str(tmp_path / "run")]
        )
        _one_line(result, str(tmp_path / name), WHERE.get(name, "is empty"))


def test_index_with_a_bad_corpus_is_one_line(tmp_path):
    for name, content in BAD_FILES.items():
        (tmp_path / name).write_bytes(content)
        result = runner.invoke(
            app,
            ["index", str(tmp_path / name), "--model", "minilm", "--out", str(tmp_path / "i.safetensors")],
        )
        expected = WHERE[name] if name != "typed.jsonl" else "line 2: column 'text' holds a number"
        _one_line(result, str(tmp_path / name), expected)


def test_label_review_with_a_missing_or_bad_csv_is_one_line(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "labels.jsonl").write_text("")
    result = runner.invoke(app, ["label-review", str(out), str(tmp_path / "missing.csv")])
    _one_line(result, f"review file {tmp_path / 'missing.csv'} not found")
    (tmp_path / "latin1.csv").write_bytes(b"query_id,doc_id,expert_grade\nq1,d\xe9,2\n")
    _one_line(
        runner.invoke(app, ["label-review", str(out), str(tmp_path / "latin1.csv")]),
        "latin1.csv, line 2: not UTF-8",
    )
    (tmp_path / "empty.csv").write_text("")
    _one_line(
        runner.invoke(app, ["label-review", str(out), str(tmp_path / "empty.csv")]), "empty.csv holds no rows"
    )


def test_a_mistyped_model_name_fails_at_once_with_what_was_meant(tmp_path):
    result = _cli("search", "angina", "--model", "minlm", cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.strip().endswith("did you mean minilm?"), result.stderr
    assert result.stderr.count("\n") == 1
