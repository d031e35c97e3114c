"""What ``cardio-st evaluate`` checks before any model loads: task names, the data each task reads,
and the ``[report]`` extra. Torch-free. Leaves out running the tasks (report).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path

from cardio_st.data.pairs import load_splits
from cardio_st.errors import CardioSTError
from cardio_st.evaluation.mteb import get_tasks

__all__ = ["ICD10_TASKS", "SHORTHAND_TASKS", "check_report", "check_tasks", "report_extra_hint"]

#: Tasks by name: what ``cardio-st evaluate --task`` accepts besides ``triplets:DIR``, ``labels:DIR``
#: (a corpus labelled by ``cardio-st label``) and ``mteb:NAME``.
ICD10_TASKS = {"icd10": "cardio", "icd10-all": "all"}
#: The clinical-shorthand benchmark by task name -> its scope (test side reported).
SHORTHAND_TASKS = {"shorthand": "cardio"}
_UNKNOWN_TASK = (
    "unknown task {task!r}: use icd10 (circulatory chapter), icd10-all, shorthand, triplets:DIR, labels:DIR "
    "or mteb:NAME"
)
_PREFIXES = ("triplets:", "labels:", "mteb:")


def check_tasks(tasks: Sequence[str]) -> None:
    """Fail on a bad task before any model loads: an unknown name, a ``triplets:DIR`` that is not there
    or whose pairs do not read, a ``labels:DIR`` that is not a folder, an mteb name mteb does not know.

    Raises:
        CardioSTError: naming the task and the fix.
    """
    for task in tasks:
        kind, _, target = task.partition(":")
        if task in ICD10_TASKS or task in SHORTHAND_TASKS:
            continue
        if not task.startswith(_PREFIXES) or not target:
            raise CardioSTError(_UNKNOWN_TASK.format(task=task))
        if kind == "triplets":
            if not Path(target).exists():
                raise CardioSTError(
                    f"task {task}: {target} does not exist; pass a prepared folder or a pairs file "
                    "(triplets:OUT of cardio-st prepare or prepare-icd10)"
                )
            load_splits(target)  # a malformed file: one line naming file and line, before any model
        elif kind == "labels" and not Path(target).is_dir():
            raise CardioSTError(
                f"task {task}: {target} is not a folder; pass the folder cardio-st label wrote"
            )
        elif kind == "mteb":
            get_tasks([target])


def report_extra_hint() -> str:
    """The command that installs the ``[report]`` extra here: ``pip install -e ".[report]"`` from a
    clone (an editable install: the package sits next to its pyproject.toml, outside site-packages),
    else ``pip install "cardio-st[report]"``."""
    package = Path(__file__).resolve().parents[1]
    clone = (package.parent / "pyproject.toml").is_file() and "site-packages" not in package.parts
    if clone:
        return f'pip install -e ".[report]" (in {package.parent}, your clone)'
    return 'pip install "cardio-st[report]"'


def check_report() -> None:
    """Fail at once, before any evaluation, when the PNG report cannot be drawn (no matplotlib).

    Raises:
        CardioSTError: with the install command that fits this installation (pip, or a clone).
    """
    if importlib.util.find_spec("matplotlib") is None:
        raise CardioSTError(f"the report's plot needs matplotlib: {report_extra_hint()}", exit_code=1)
