"""Train with CardioEmbed's recipe through the standard SentenceTransformerTrainer, then merge.

Run: python examples/04_train_cardioembed.py [--base Qwen/Qwen3-Embedding-8B --quantize 8bit --steps -1]
The defaults run on a CPU in a couple of minutes: LoRA on the embedded all-MiniLM-L6-v2, a few
steps on ICD-10-CM pairs from the training side of the fixed split (alternative term -> official
description). On a GPU, pass the paper's base and --steps -1 for full epochs.
"""

import argparse
import tempfile

from datasets import Dataset, DatasetDict
from transformers import set_seed

from cardio_st.data.icd10 import load_codes
from cardio_st.models import cardioembed, embedded_models
from cardio_st.modules import merge_lora
from cardio_st.training.trainer import train

parser = argparse.ArgumentParser()
parser.add_argument("--base", default=str(embedded_models()["minilm"]))
parser.add_argument("--base-model-id", default="sentence-transformers/all-MiniLM-L6-v2")
parser.add_argument("--quantize", choices=["8bit", "4bit", "none"], default="none")
parser.add_argument("--steps", type=int, default=20)
parser.add_argument("--batch-size", type=int, default=32)
args = parser.parse_args()

# Pairs from the training side only: no text of a held-out category is ever trained on.
codes = load_codes("cardio", billable_only=True, split="train")
pairs = [(term, code.description) for code in codes for term in code.alternative_terms]
split = Dataset.from_dict(
    {"anchor": [a for a, _ in pairs], "positive": [p for _, p in pairs]}
).train_test_split(test_size=0.1, seed=0)
data = DatasetDict({"train": split["train"], "eval": split["test"]})
print(f"{len(data['train'])} training pairs, {len(data['eval'])} validation pairs")

set_seed(42)  # before the adapter is created: its initialisation is random
model = cardioembed(
    args.base,
    base_model_id=args.base_model_id if args.base == str(embedded_models()["minilm"]) else None,
    quantization=None if args.quantize == "none" else args.quantize,
)
out = tempfile.mkdtemp()
result = train(model, data, out, batch_size=args.batch_size, max_steps=args.steps, show_progress=False)
print(f"adapter saved to {result.final_dir} after {result.steps} steps in {result.seconds:.0f} s")
for key in ("held-out_accuracy@1", "held-out_mrr@10"):
    print(f"  {key}: {result.metrics[key]:.3f}")

if args.quantize == "none":  # merging needs an unquantized base (reload the adapter folder first otherwise)
    merge_lora(model)
    model.save(f"{out}/merged")
    print(f"merged full-weight model saved to {out}/merged")
