"""What `cardio-st evaluate` checks before any model loads (issue 18, items 6 and 8): task names, the
data a task reads, and the [report] extra with an install hint that fits the installation."""

from __future__ import annotations

import importlib.util

import pytest
from typer.testing import CliRunner

import cardio_st.retrieval.named
from cardio_st.cli import app
from cardio_st.errors import CardioSTError
from cardio_st.evaluation import checks

runner = CliRunner()


@pytest.fixture
def no_model_loads(monkeypatch):
    def refuse(name):
        raise AssertionError(f"model {name} was resolved before the tasks were checked")

    monkeypatch.setattr(cardio_st.retrieval.named, "resolve_retriever", refuse)


@pytest.mark.parametrize(
    ("task", "message"),
    [
        ("icd11", "unknown task 'icd11'"),
        ("triplets:missing", "task triplets:missing: missing does not exist"),
    ],
)
def test_bad_tasks_fail_before_any_model(no_model_loads, tmp_path, monkeypatch, task, message):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["evaluate", "--task", task])
    assert result.exit_code == 2, result.output
    assert message in result.stderr and result.stderr.count("\n") == 1


def test_a_malformed_triplets_file_fails_before_any_model(no_model_loads, tmp_path):
    (tmp_path / "pairs.jsonl").write_text('{"anchor": "a", "positive": "b"}\nnot json\n')
    result = runner.invoke(app, ["evaluate", "--task", f"triplets:{tmp_path / 'pairs.jsonl'}"])
    assert result.exit_code == 2 and "pairs.jsonl, line 2: not JSON" in result.stderr


def test_report_without_matplotlib_fails_at_once_with_the_install_hint(no_model_loads, monkeypatch, tmp_path):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "matplotlib" else real(name, *a)
    )
    result = runner.invoke(app, ["evaluate", "--report", str(tmp_path / "r")])
    assert result.exit_code == 1 and "the report's plot needs matplotlib: pip install" in result.stderr
    assert not (tmp_path / "r").exists()


def test_the_install_hint_fits_a_clone_and_a_pip_install(monkeypatch, tmp_path):
    # This checkout is a clone (editable install): the hint installs from it
    assert checks.report_extra_hint().startswith('pip install -e ".[report]"')
    # A wheel in site-packages: the hint names the package on PyPI
    monkeypatch.setattr(
        checks, "__file__", str(tmp_path / "site-packages" / "cardio_st" / "evaluation" / "checks.py")
    )
    assert checks.report_extra_hint() == 'pip install "cardio-st[report]"'


def test_check_tasks_accepts_the_known_tasks(tmp_path):
    (tmp_path / "labels").mkdir()
    checks.check_tasks(["icd10", "icd10-all", "shorthand", f"labels:{tmp_path / 'labels'}"])
    with pytest.raises(CardioSTError, match="is not a folder"):
        checks.check_tasks([f"labels:{tmp_path / 'nope'}"])
