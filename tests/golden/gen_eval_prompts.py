#!/usr/bin/env python3
"""Writes tests/golden/eval_prompts/<task>.json: the prompts lm-eval builds for the first test docs,
plain and with the Qwen2.5-Instruct chat template (--apply_chat_template --fewshot_as_multiturn).

Written by hand from the lm-eval task definitions (see shared/research/evaluation.md): doc_to_text,
doc_to_target, target/fewshot delimiters, descriptions, few-shot samplers (random.Random(1234).sample
over the train split for gsm8k, first_n inline samples for gsm8k_cot / bbh_cot_fewshot), and
lm-eval's chat assembly (description -> system message, shots -> user/assistant turns, test doc ->
final user turn, add_generation_prompt=True; multiple-choice continuations lose the target
delimiter under a chat template). Chat rendering uses Jinja2 configured as transformers'
apply_chat_template does. Usage: python3 gen_eval_prompts.py [DATA_DIR] (default: the repository's
testdata/, whose large files are gzip-compressed; needs python3-jinja2)
"""
import gzip
import json
import os
import random
import sys

from jinja2.sandbox import ImmutableSandboxedEnvironment

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "..", "testdata")


def data_open(path):
    """A data file, or its gzip-compressed copy PATH.gz (as testdata/ stores large files)."""
    if os.path.exists(path):
        return open(path, encoding="utf-8")
    return gzip.open(path + ".gz", "rt", encoding="utf-8")

OUT = os.path.join(HERE, "eval_prompts")
N = 5

with data_open(os.path.join(DATA, "qwen-tokenizer", "qwen2.5", "tokenizer_config.json")) as f:
    template_src = json.load(f)["chat_template"]
env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
template = env.from_string(template_src)


def chat(messages):
    return template.render(messages=messages, add_generation_prompt=True, tools=None)


def assemble(description, shots, query, tgt_delim, few_delim="\n\n"):
    plain = description + "".join(q + tgt_delim + a + few_delim for q, a in shots) + query
    msgs = [{"role": "system", "content": description}] if description else []
    for q, a in shots:
        msgs += [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
    msgs.append({"role": "user", "content": query})
    return plain, chat(msgs)


def write(task, rows):
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, task + ".json"), "w", encoding="utf-8") as f:
        json.dump({"task": task, "docs": rows}, f, indent=1, ensure_ascii=False)
        f.write("\n")


def jsonl(path):
    with data_open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


# ---- gsm8k family ----
test = jsonl(os.path.join(DATA, "gsm8k", "test.jsonl"))
train = jsonl(os.path.join(DATA, "gsm8k", "train.jsonl"))
rnd = random.Random(1234)
rows = []
for i in range(N):
    shots = rnd.sample(train, 5)
    pairs = [("Question: " + s["question"] + "\nAnswer:", s["answer"]) for s in shots]
    plain, chat_p = assemble("", pairs, "Question: " + test[i]["question"] + "\nAnswer:", " ")
    rows.append({"doc_id": i, "plain": plain, "chat": chat_p,
                 "fewshot_indices": [train.index(s) for s in shots]})
write("gsm8k", rows)

COT = [
    ("There are 15 trees in the grove. Grove workers will plant trees in the grove today. After they are done, there will be 21 trees. How many trees did the grove workers plant today?",
     "There are 15 trees originally. Then there were 21 trees after some more were planted. So there must have been 21 - 15 = 6. The answer is 6."),
    ("If there are 3 cars in the parking lot and 2 more cars arrive, how many cars are in the parking lot?",
     "There are originally 3 cars. 2 more cars arrive. 3 + 2 = 5. The answer is 5."),
    ("Leah had 32 chocolates and her sister had 42. If they ate 35, how many pieces do they have left in total?",
     "Originally, Leah had 32 chocolates. Her sister had 42. So in total they had 32 + 42 = 74. After eating 35, they had 74 - 35 = 39. The answer is 39."),
    ("Jason had 20 lollipops. He gave Denny some lollipops. Now Jason has 12 lollipops. How many lollipops did Jason give to Denny?",
     "Jason started with 20 lollipops. Then he had 12 after giving some to Denny. So he gave Denny 20 - 12 = 8. The answer is 8."),
    ("Shawn has five toys. For Christmas, he got two toys each from his mom and dad. How many toys does he have now?",
     "Shawn started with 5 toys. If he got 2 toys each from his mom and dad, then that is 4 more toys. 5 + 4 = 9. The answer is 9."),
    ("There were nine computers in the server room. Five more computers were installed each day, from monday to thursday. How many computers are now in the server room?",
     "There were originally 9 computers. For each of 4 days, 5 more computers were added. So 5 * 4 = 20 computers were added. 9 + 20 is 29. The answer is 29."),
    ("Michael had 58 golf balls. On tuesday, he lost 23 golf balls. On wednesday, he lost 2 more. How many golf balls did he have at the end of wednesday?",
     "Michael started with 58 golf balls. After losing 23 on tuesday, he had 58 - 23 = 35. After losing 2 more, he had 35 - 2 = 33 golf balls. The answer is 33."),
    ("Olivia has $23. She bought five bagels for $3 each. How much money does she have left?",
     "Olivia had 23 dollars. 5 bagels for 3 dollars each will be 5 x 3 = 15 dollars. So she has 23 - 15 dollars left. 23 - 15 is 8. The answer is 8."),
]
rows = []
for i in range(N):
    pairs = [("Q: " + q + "\nA:", a) for q, a in COT]
    plain, chat_p = assemble("", pairs, "Q: " + test[i]["question"] + "\nA:", " ")
    rows.append({"doc_id": i, "plain": plain, "chat": chat_p,
                 "target": test[i]["answer"].split("####")[-1].strip()})
write("gsm8k_cot", rows)

rows = []
for i in range(N):
    plain, chat_p = assemble("", [], "Q: " + test[i]["question"] + "\nA: Let's think step by step.", " ")
    rows.append({"doc_id": i, "plain": plain, "chat": chat_p})
write("gsm8k_cot_zeroshot", rows)

# ---- sciq ----
with data_open(os.path.join(DATA, "sciq", "test.json")) as f:
    sciq = json.load(f)
rows = []
for i in range(N):
    d = sciq[i]
    text = d["support"].lstrip() + "\nQuestion: " + d["question"] + "\nAnswer:"
    choices = [d["distractor1"], d["distractor2"], d["distractor3"], d["correct_answer"]]
    plain, chat_p = assemble("", [], text, " ")
    rows.append({"doc_id": i, "plain": plain, "chat": chat_p,
                 "continuations_plain": [" " + c for c in choices],
                 "continuations_chat": choices})
write("sciq", rows)


# ---- bbh ----
def cot_prompt(subtask):
    with data_open(os.path.join(DATA, "bbh", "cot-prompts", subtask + ".txt")) as f:
        body = f.read().split("-----\n", 1)[1]
    description, rest = body.split("\n\nQ: ", 1)
    shots = []
    for block in ("Q: " + rest).rstrip().split("\n\nQ: "):
        block = block if block.startswith("Q: ") else "Q: " + block
        marker = "\nA: Let's think step by step."
        at = block.index(marker)
        rationale = block[at + len(marker):]
        if rationale[:1] in ("\n", " "):
            rationale = rationale[1:]
        shots.append((block[3:at], rationale))
    assert len(shots) == 3, subtask
    return description + "\n\n", shots


def bbh_docs(subtask):
    with data_open(os.path.join(DATA, "bbh", "bbh", subtask + ".json")) as f:
        return json.load(f)["examples"]


step = "\nA: Let's think step by step.\n"
for subtask, n in [("boolean_expressions", N), ("snarks", N), ("sports_understanding", N),
                   ("dyck_languages", 2), ("penguins_in_a_table", 2), ("temporal_sequences", 2)]:
    description, shots = cot_prompt(subtask)
    docs = bbh_docs(subtask)
    rows = []
    for i in range(n):
        pairs = [("Q: " + q + step, a) for q, a in shots]
        plain, chat_p = assemble(description, pairs, "Q: " + docs[i]["input"] + step, "")
        rows.append({"doc_id": i, "plain": plain, "chat": chat_p, "target": docs[i]["target"]})
    write("bbh_cot_fewshot_" + subtask, rows)

for subtask in ("boolean_expressions", "word_sorting"):
    description, _ = cot_prompt(subtask)
    docs = bbh_docs(subtask)
    rows = []
    for i in range(N):
        plain, chat_p = assemble(description, [], "Q: " + docs[i]["input"] + "\nA:", " ")
        rows.append({"doc_id": i, "plain": plain, "chat": chat_p, "target": docs[i]["target"]})
    write("bbh_zeroshot_" + subtask, rows)

# ---- humaneval_instruct ----
# doc_to_text is the user turn; gen_prefix starts the assistant turn. Plain: lm-eval joins them
# directly (the text ends in "\n", so no delimiter is needed). Chat: rendered as transformers'
# apply_chat_template(continue_final_message=True) does in the releases that strip the final
# message (several 4.4x versions): cut right after the *stripped* gen_prefix, then rstripped. Later
# releases first look for the unstripped content and keep its trailing newlines; rvec follows the
# stripping behaviour.
with gzip.open(os.path.join(DATA, "humaneval", "HumanEval.jsonl.gz"), "rt", encoding="utf-8") as f:
    humaneval = [json.loads(line) for line in f if line.strip()]
rows = []
for i in range(N):
    prompt = humaneval[i]["prompt"]
    text = ("Write a solution to the following problem and make sure that it passes the tests:\n"
            "```python\n" + prompt + "\n```\n")
    prefix = "Here is the completed function:\n```python\n" + prompt + "\n"
    rendered = template.render(messages=[{"role": "user", "content": text},
                                         {"role": "assistant", "content": prefix}],
                               add_generation_prompt=False, tools=None)
    final = prefix.strip()
    chat_p = rendered[: rendered.rindex(final) + len(final)].rstrip()
    rows.append({"doc_id": i, "plain": text + prefix, "chat": chat_p})
write("humaneval_instruct", rows)
print("wrote", sorted(os.listdir(OUT)))
