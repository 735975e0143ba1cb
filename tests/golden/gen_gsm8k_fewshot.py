#!/usr/bin/env python3
"""Writes gsm8k_fewshot_seed1234.json: the train-set indices that lm-eval's default few-shot sampler
picks for the first 20 GSM8K test docs (task gsm8k, num_fewshot 5, fewshot seed 1234).

lm-eval (lm_eval/api/samplers.py ContextSampler): one random.Random(seed) per task, and for each test
doc in dataset order `self.rnd.sample(self.fewshot_docs(), n)` -- the train split differs from the
test split, so no extra doc is drawn and nothing is removed. random.sample on a list returns
population[j] for the same j's as random.sample(range(len(population)), n), so the indices are
recorded directly. Usage: python3 gen_gsm8k_fewshot.py [DATA_DIR] (default: the repository's
testdata/)
"""
import gzip
import json
import os
import random
import sys

data = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    os.path.dirname(__file__), "..", "..", "testdata")
path = os.path.join(data, "gsm8k", "train.jsonl")
with (open(path, encoding="utf-8") if os.path.exists(path)
      else gzip.open(path + ".gz", "rt", encoding="utf-8")) as f:
    train = [json.loads(line) for line in f]
assert len(train) == 7473, len(train)

out = {"seed": 1234, "num_fewshot": 5, "pool": "gsm8k/train.jsonl", "indices": []}
for seed in (1234, 42, 0):
    rnd = random.Random(seed)
    rows = []
    for doc_id in range(20):
        chosen = rnd.sample(train, 5)  # exactly what the sampler calls
        rows.append([train.index(d) for d in chosen])
    if seed == 1234:
        out["indices"] = rows
    else:
        out[f"indices_seed{seed}"] = rows
# Cross-check of the pool branch of random.sample (small population) and of large k.
rnd = random.Random(1234)
out["small_population_sample"] = [rnd.sample(range(30), 6) for _ in range(3)]
rnd = random.Random(7)
out["getrandbits_64"] = [rnd.getrandbits(64) for _ in range(3)]
with open(os.path.join(os.path.dirname(__file__), "gsm8k_fewshot_seed1234.json"), "w") as f:
    json.dump(out, f, indent=1)
    f.write("\n")
print("python", sys.version.split()[0], "first row", out["indices"][0])
