"""The package's layout: layers that point down, cheap imports, subpackages as attributes, small files.
Leaves out behaviour: each capability's tests live in the folder of its subpackage."""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import cardio_st

PACKAGE = Path(cardio_st.__file__).parent
HEAVY = ("torch", "sentence_transformers", "transformers")


def _heavy_modules_after(code: str) -> list[str]:
    """The heavy packages a fresh interpreter has imported after running ``code``."""
    probe = f"{code}\nimport sys, json\nprint(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}})))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    loaded = json.loads(out.strip().splitlines()[-1])
    return [name for name in HEAVY if name in loaded]


def test_import_cardio_st_loads_no_torch():
    # Given a fresh interpreter, When cardio_st is imported, Then neither torch nor sentence-transformers is.
    assert _heavy_modules_after("import cardio_st") == []


def test_cli_help_loads_no_torch():
    code = "from cardio_st.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass"
    assert _heavy_modules_after(code) == []


def test_resolving_a_model_name_loads_no_torch(tmp_path):
    # A local folder, a Hub id and an embedded alias (the base MiniLM: the default's merge on first use is
    # the documented exception) are resolved without loading anything.
    (tmp_path / "modules.json").write_text("[]")
    # (offline, an uncached Hub id is refused at once: the refusal must not load torch either)
    code = (
        "from cardio_st.errors import CardioSTError\n"
        "from cardio_st.models.default import resolve_model\n"
        f"resolve_model({str(tmp_path)!r}); resolve_model('minilm')\n"
        "try:\n    resolve_model('org/name')\nexcept CardioSTError:\n    pass"
    )
    assert _heavy_modules_after(code) == []


@pytest.mark.parametrize("name", cardio_st.SUBPACKAGES)
def test_subpackages_are_attributes(name):
    assert getattr(cardio_st, name).__name__ == f"cardio_st.{name}"


def test_reexported_names_resolve():
    for name in cardio_st.__all__:
        assert getattr(cardio_st, name) is not None, name
    assert callable(cardio_st.models.cardioembed)  # the recipe function, not its module
    assert cardio_st.retrieval.ICD10Search.__module__ == "cardio_st.retrieval.icd10"
    assert cardio_st.models.care.care_model.__name__ == "care_model"
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        cardio_st.nope  # noqa: B018


def test_every_subpackage_is_listed():
    found = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    found |= {p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    assert found == set(cardio_st.SUBPACKAGES)


def test_no_file_above_400_lines():
    lengths = {str(p.relative_to(PACKAGE)): len(p.read_text().splitlines()) for p in PACKAGE.rglob("*.py")}
    long = {name: n for name, n in lengths.items() if n > 400}
    assert long == {}


def test_internal_imports_inside_functions_say_why():
    """A cardio_st import inside a function hides the dependency direction; the only ones allowed keep
    a cheap module cheap and say so in a comment just above. The CLI is the exception by design: each
    command imports the library it calls when it runs, so ``cardio-st --help`` imports nothing heavy."""
    unexplained = []
    for path in PACKAGE.rglob("*.py"):
        if path.relative_to(PACKAGE).parts[0] == "cli":
            continue
        lines = path.read_text().splitlines()
        for node in ast.walk(ast.parse("\n".join(lines))):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for inner in ast.walk(node):
                if isinstance(inner, ast.ImportFrom) and (inner.module or "").startswith("cardio_st"):
                    above = lines[inner.lineno - 2].strip() if inner.lineno > 1 else ""
                    if not above.startswith("#"):
                        unexplained.append(f"{path.relative_to(PACKAGE)}:{inner.lineno}")
    assert sorted(set(unexplained)) == []


@pytest.mark.skipif(shutil.which("lint-imports") is None, reason="import-linter is in the dev group")
def test_import_layers_point_down():
    result = subprocess.run(["lint-imports"], capture_output=True, text=True, cwd=PACKAGE.parent)
    assert result.returncode == 0, result.stdout[-3000:]


def test_sentence_transformers_under_cardio_st_prints_no_bitsandbytes_import_hint():
    # Given a fresh interpreter where cardio-st is imported first (as the CLI does), When
    # sentence-transformers is imported (peft imports bitsandbytes with it), Then bitsandbytes' hint about
    # its optional CPU kernel package, meaningless when nothing is quantized, is not printed.
    code = "import cardio_st\nimport sentence_transformers\nimport bitsandbytes"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "gemm_4bit_forward" not in run.stderr + run.stdout
