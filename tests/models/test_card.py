"""cardio_st.models.card: what the card says, that it renders in mkdocs without broken sections, and that
its loading snippet runs as written."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from cardio_st.hub.push import push_to_hub
from cardio_st.models.card import CardFacts, card_facts, enrich_card
from cardio_st.models.record import describe_model, read_record


def card_problems(text: str) -> list[str]:
    """Structural faults of a markdown card: unclosed code fences, template leftovers, ragged tables,
    empty or repeated sections."""
    problems = []
    body = re.sub(r"^---\n.*?\n---\n", "", text, count=1, flags=re.DOTALL)
    lines = body.splitlines()
    if sum(line.startswith("```") for line in lines) % 2:
        problems.append("a code fence is not closed")
    problems += [f"template leftover {m}" for m in ("{{", "{%") if m in body]
    outside_code, items, fenced = [], [], False
    for line in lines:
        fence = line.startswith("```")
        if fenced or fence:
            items.append("code")
        else:
            outside_code.append(line)
            if line.strip() and not line.startswith("<!--"):
                items.append(line)
        fenced ^= fence
    headings = [
        (len(m.group(1)), m.group(2)) for line in outside_code if (m := re.match(r"^(#+) (.*)", line))
    ]
    h2 = [title for level, title in headings if level == 2]
    problems += [f"section {t!r} twice" for t in set(h2) if h2.count(t) > 1]
    for line, following in zip(items, items[1:]):
        a, b = re.match(r"^(#+) ", line), re.match(r"^(#+) ", following)
        if a and b and len(b.group(1)) <= len(a.group(1)):
            problems.append(f"empty section {line!r}")
    table: int | None = None
    for line in outside_code:
        if line.startswith("|"):
            cells = len(re.findall(r"(?<!\\)\|", line)) - 1
            table = cells if table is None else table
            if cells != table:
                problems.append(f"ragged table row {line[:60]!r}")
        else:
            table = None
    return problems


def _render_with_mkdocs(card: str, folder: Path) -> str:
    """Build ``card`` as the only page of a strict mkdocs site with this project's markdown settings."""
    config = (Path(__file__).parents[2] / "mkdocs.yml").read_text()
    extensions = config[config.index("markdown_extensions:") : config.index("plugins:")]
    (folder / "docs").mkdir(parents=True)
    (folder / "docs" / "index.md").write_text(card)
    (folder / "mkdocs.yml").write_text(f"site_name: card\nstrict: true\ntheme:\n  name: mkdocs\n{extensions}")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-q"],
        cwd=folder,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return (folder / "site" / "index.html").read_text()


@pytest.mark.parametrize("which", ["trained adapter", "full model", "CARE router"])
def test_cards_render_in_mkdocs_without_broken_sections(
    which, adapter_folder, full_model_folder, care_folder, tmp_path
):
    folder = {
        "trained adapter": adapter_folder[0],
        "full model": full_model_folder[0],
        "CARE router": care_folder,
    }
    bases = {"CARE router": ["my-lab/q", "my-lab/d"], "full model": "my-lab/base"}.get(which)
    push_to_hub(
        folder[which], "my-lab/card", dry_run=tmp_path / "dry", base_model_id=bases, license="apache-2.0"
    )
    card = (tmp_path / "dry" / "README.md").read_text()
    assert card_problems(card) == []
    html = _render_with_mkdocs(card, tmp_path / "site")
    titles = re.findall(r"<h2 id=\"[^\"]*\">(.*?)<a", html)
    for title in ("Usage", "Evaluation", "Intended Use", "Bias, Risks and Limitations", "Citation"):
        assert title in titles, (title, titles)
    assert html.count("<table>") >= 1 and "```" not in html and "sentence_transformers_model_id" not in html


def test_card_problems_finds_what_it_looks_for():
    assert card_problems("# T\n\n```python\nx = 1\n") == ["a code fence is not closed"]
    assert card_problems("# T\n\n## A\n## B\ntext\n") == ["empty section '## A'"]
    assert card_problems("# T\n\n| a | b |\n|--|--|\n| 1 | 2 | 3 |\n")[0].startswith("ragged table row")
    assert card_problems("# T\n\nHello {{ name }}\n") == ["template leftover {{"]


def _snippet(card: str) -> str:
    usage = card.split("<!-- cardio-st:usage -->")[1]
    return usage.split("```python\n")[1].split("```")[0]


@pytest.mark.slow
@pytest.mark.parametrize("which", ["trained adapter", "CARE router"])
def test_the_cards_loading_snippet_runs_as_written(which, adapter_folder, care_folder, tmp_path):
    folder = adapter_folder[0] if which == "trained adapter" else care_folder
    push_to_hub(folder, "my-lab/snippet", dry_run=tmp_path / "dry")
    code = _snippet((tmp_path / "dry" / "README.md").read_text())
    assert code.count('SentenceTransformer("my-lab/snippet")') == 1
    # Run it in a fresh process without cardio_st, the repository id pointing at the uploaded files.
    code = code.replace('"my-lab/snippet"', repr(str(tmp_path / "dry")))
    code += "\nimport sys\nassert not [m for m in sys.modules if m.startswith('cardio_st')]\nprint('ran')\n"
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": ""},
        cwd=tempfile.gettempdir(),
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().endswith("ran") and "tensor([[" in result.stdout


def test_trust_remote_code_only_when_a_module_needs_it(full_model_folder, tmp_path):
    folder = tmp_path / "custom"
    shutil.copytree(full_model_folder[0], folder, ignore=shutil.ignore_patterns(".git", "checkpoint-*"))
    facts = card_facts(folder, repo_id="my-lab/x")
    assert "trust_remote_code" not in _snippet(enrich_card("# Card\n", facts))
    modules = json.loads((folder / "modules.json").read_text())
    modules[1]["type"] = "my_package.pooling.FancyPooling"
    (folder / "modules.json").write_text(json.dumps(modules))
    card = enrich_card("# Card\n", card_facts(folder, repo_id="my-lab/x"))
    assert 'SentenceTransformer("my-lab/x", trust_remote_code=True)' in _snippet(card)
    assert "`my_package.pooling.FancyPooling`" in card


def test_a_hand_written_card_is_kept_and_completed(full_model_folder, tmp_path):
    facts = card_facts(full_model_folder[0], repo_id="my-lab/x", license="mit", language="en")
    text = "# Our model\n\nWritten by the team: trained on our cath-lab reports.\n"
    card = enrich_card(text, facts)
    assert card.startswith("---\n") and "license: mit" in card and "- en" in card
    assert "Written by the team: trained on our cath-lab reports." in card
    assert "## Intended Use" in card and "No evaluation results were recorded" in card
    assert enrich_card(card, facts) == card  # idempotent
    assert card_problems(card) == []


def test_quantized_training_is_stated_with_the_way_to_reload_it(adapter_folder, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(adapter_folder[0], folder)
    record = read_record(folder)
    (folder / "cardio_st.json").write_text(json.dumps({**record, "quantization": "8bit"}))
    card = enrich_card("# Card\n", card_facts(folder, repo_id="my-lab/x"))
    assert "| Base quantization during training | 8-bit (bitsandbytes LLM.int8())" in card
    assert "BitsAndBytesConfig(load_in_8bit=True)" in card


def test_the_training_record_states_what_the_run_used(adapter_folder, tiny_qwen3_hub_id):
    folder, result = adapter_folder
    record = read_record(folder)
    assert record["base_models"] == [tiny_qwen3_hub_id]
    assert record["lora"] == {
        "r": 16,
        "lora_alpha": 32,
        "lora_dropout": 0.05,
        "target_modules": ["down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"],
    }
    assert record["data"] == {
        "name": "toy-pairs",
        "rows": {"train": 32, "eval": 8},
        "columns": ["anchor", "positive"],
    }
    assert (
        record["losses"][0]["name"] == "InfoNCELoss" and record["losses"][0]["config"]["temperature"] == 0.05
    )
    assert "2511.10930" in record["losses"][0]["citation"] and record["training"]["steps"] == result.steps


def test_describe_model_sees_an_8bit_base(tiny_qwen3_hub_id):
    from sentence_transformers import SentenceTransformer

    from cardio_st.modules.eos_pooling import eos_pooling
    from cardio_st.modules.lora_transformer import lora_transformer

    transformer = lora_transformer(tiny_qwen3_hub_id, quantization="8bit", r=4)
    model = SentenceTransformer(modules=[transformer, eos_pooling(transformer)], device="cpu")
    described = describe_model(model)
    assert described["quantization"] == "8bit" and described["lora"]["r"] == 4
    assert described["base_models"] == [tiny_qwen3_hub_id]


def test_facts_default_to_nothing_unknown():
    facts = CardFacts()
    card = enrich_card("", facts)
    assert "base_model" not in card and "| Weights in this repository | full weights |" in card
