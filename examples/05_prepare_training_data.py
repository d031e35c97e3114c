"""Prepare training data: the ICD-10-CM pairs that ship with cardio-st, and triplets from your own texts.

Runs offline in about half a minute. Set CARDIO_ST_LLM_URL (an OpenAI-compatible server such as vLLM or
Ollama, e.g. http://localhost:8000/v1) and CARDIO_ST_LLM_MODEL to paraphrase the texts with a real LLM;
without them, step 3 uses pairs that already exist (the `none` paraphraser).
"""

import json
import os
import tempfile
from pathlib import Path

import datasets
from datasets import load_from_disk

from cardio_st.data.corpus import read_corpus
from cardio_st.data.icd10 import load_codes
from cardio_st.data.paraphrase import make_paraphraser
from cardio_st.data.prepare import prepare_corpus, prepare_icd10

datasets.disable_progress_bars()
work = Path(tempfile.mkdtemp(prefix="cardio_st_data_"))

# 1. ICD-10-CM pairs (alternative term -> official description, sibling-code negative) from the train
#    side of the fixed split, and the evaluation set from its held-out side.
summary = prepare_icd10(work / "icd10", scope="cardio")
print(
    f"ICD-10-CM: {summary['rows: train']} train and {summary['rows: validation']} validation pairs, "
    f"{summary['eval: queries (held-out terms)']} held-out evaluation queries"
)
print("  e.g.", load_from_disk(str(work / "icd10"))["train"][0])

# 2. Your texts -> clean sentences: page numbers, running headers, captions and line-end hyphens go.
texts = work / "texts"
texts.mkdir()
(texts / "stemi_guideline.txt").write_text(
    "Acute Coronary Syndromes                     12\n\n"
    "Primary percutaneous coronary intervention is the preferred reperfu-\n"
    "sion strategy when it can be performed within 120 min of diagnosis.\n"
    "Patients should receive aspirin 162-325 mg p.o. as soon as possible,\n"
    "e.g. in the ambulance. Unfractionated heparin 70-100 U/kg i.v. bolus\n"
    "is given during PCI.\n"
    "Figure 4.1 Timeline of reperfusion therapy.\n\n"
    "Acute Coronary Syndromes                     13\n\n"
    "Contraindications to fibrinolysis include prior intracranial hem-\n"
    "orrhage and suspected aortic dissection (see Fig. 4.2).\n"
    "Acute Coronary Syndromes                     14\n",
    encoding="utf-8",
)
(texts / "heart_failure_notes.md").write_text(
    "Loop diuretics relieve congestion in heart failure with reduced ejection fraction.\n"
    "Dr. Smith et al. showed that sacubitril/valsartan lowers mortality vs. enalapril.\n",
    encoding="utf-8",
)
corpus = read_corpus(texts)
print(f"\nCorpus: {corpus.stats}")
for sentence in corpus.sentences:
    print(f"  [{sentence.source}#{sentence.position}] {sentence.text}")

# 3. Sentences -> (anchor, positive, negative) triplets; negatives come from another source.
url, name = os.environ.get("CARDIO_ST_LLM_URL"), os.environ.get("CARDIO_ST_LLM_MODEL")
if url and name:
    paraphraser = make_paraphraser(f"openai:{url}", model=name)
    summary = prepare_corpus(
        texts, work / "triplets", paraphraser=paraphraser, split="ratio", ratios=(1, 0, 0)
    )
else:
    # Existing pairs (here: ICD-10-CM alternative terms, one source per block of codes).
    pairs_file = work / "pairs.jsonl"
    with open(pairs_file, "w", encoding="utf-8") as handle:
        for code in load_codes("cardio", split="train"):
            for term in code.alternative_terms:
                row = {"anchor": term, "positive": code.description, "source": code.block}
                handle.write(json.dumps(row) + "\n")
    summary = prepare_corpus(pairs_file, work / "triplets", paraphraser=None, split="source")
print(f"\nTriplets in {work / 'triplets'}: {summary}")
print("  e.g.", load_from_disk(str(work / "triplets"))["train"][0])
print(f"\nTrain on them: cardio-st train --data {work / 'triplets'} --base ... --out runs/model")
