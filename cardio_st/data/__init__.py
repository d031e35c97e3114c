"""Data: ICD-10-CM codes, the fixed evaluation split and pairs (icd10), clinical texts to sentences
(corpus), paraphrase generators (paraphrase), triplets (triplets) and the pipelines that chain them
(prepare); relevance labels of a corpus by LLM judges (judges, labelling); the JSONL checkpoint that
every LLM job appends to (checkpoint)."""
