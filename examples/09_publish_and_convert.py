"""Convert a raw PEFT adapter into a sentence-transformers model, evaluate it, and stage its Hub upload.

Run: python examples/09_publish_and_convert.py [OUT_DIR]
Offline, on a CPU, in about half a minute. The raw adapter is the one cardio-st ships for its default
model (adapter_config.json + adapter_model.safetensors for all-MiniLM-L6-v2: the layout of
CardioEmbed's Hub repo). The push is a dry run: it writes exactly the files an upload would send,
model card included; drop ``dry_run`` (and log in with `hf auth login`) to upload for real.
"""

import argparse
import tempfile
from pathlib import Path

from sentence_transformers import SentenceTransformer

from cardio_st import convert, push_to_hub
from cardio_st.evaluation.icd10 import evaluate_icd10
from cardio_st.models.default import ICD10_MINILM, embedded_models
from cardio_st.models.record import read_record

parser = argparse.ArgumentParser()
parser.add_argument("out", nargs="?", default=tempfile.mkdtemp())
args = parser.parse_args()
out = Path(args.out)

# --8<-- [start:convert]
# A raw adapter names its base but says nothing of pooling: convert builds the base's pipeline
# (MiniLM's own: mean pooling, L2) around it and writes a folder plain sentence-transformers loads.
folder = convert(
    ICD10_MINILM,  # or a Hub id such as "richardyoung/CardioEmbed"
    out / "icd10-minilm",
    base=str(embedded_models()["minilm"]),  # a local copy of the base, offline
    base_model_id="sentence-transformers/all-MiniLM-L6-v2",  # what the copy is, for the card
    merge=True,  # full weights: loads without peft, and without fetching the base from the Hub
)
model = SentenceTransformer(str(folder), device="cpu")
# --8<-- [end:convert]
print(
    f"converted: {[type(module).__name__ for module in model]}; adapter merged: {read_record(folder)['lora']}"
)

# --8<-- [start:evaluate]
# Evaluators record their results in the model's card data: the card's numbers come from this run.
result = evaluate_icd10(model, "cardio", bootstrap=0, show_progress=False)
print(f"held-out circulatory chapter: exact@1 {result.metrics['exact@1']:.3f}")
# --8<-- [end:evaluate]

# --8<-- [start:push]
pushed = push_to_hub(
    model,
    "your-name/icd10-minilm",
    license="apache-2.0",  # all-MiniLM-L6-v2's licence
    language="en",
    dry_run=out / "upload",  # remove to upload (the token comes from `hf auth login` or HF_TOKEN)
)
# --8<-- [end:push]
print(f"staged {len(pushed.files)} files in {pushed.folder}:")
for name in pushed.files:
    print(f"  {name}")
card = (pushed.folder / "README.md").read_text()
print(card[: card.index("widget:") if "widget:" in card else 600])
