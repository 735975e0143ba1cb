#!/usr/bin/env python3
"""Writes tests/golden/math_prompts/<style>.json: the prompts the Qwen2.5-Math evaluation
(QwenLM/Qwen2.5-Math evaluation/math_eval.py) builds for the first test docs of math500, aime24,
amc23, minerva_math and olympiadbench, for each prompt type rvec offers (--prompt-style).

Written by hand from the reference definitions, never from rvec:
- the question: the first of the doc's "question" / "problem" fields, plus " (Yes or No)" /
  " (True or False)" when the gold answer is one of those words, stripped (parse_question);
- the prompt: the prompt type's input template (utils.py PROMPT_TEMPLATES) with the question
  in place of {input}, then stripped of spaces at both ends (construct_prompt); zero-shot, except
  cot-fewshot: the `cot` type after all its exemplars (examples.py "math", or "minerva_math" for
  Minerva; copied verbatim into math_cot_exemplars.json), each "Question: q\nAnswer: a", joined
  and followed by the type's splitter "\n\n\n";
- "plain": that string, as math_eval.py sends it without --apply_chat_template;
- "chat": what rvec renders with the Qwen2.5-Instruct chat template. For qwen25-math-cot and
  qwen-boxed the reference string itself (its system and user messages rendered by the Qwen2.5
  template give exactly that string; asserted below with Jinja2). For the base-model types, the
  reference's --apply_chat_template: the stripped prompt as the one user message,
  add_generation_prompt=True, rendered with Jinja2 as transformers does.
Usage: python3 gen_math_prompts.py [DATA_DIR] (default: the repository's testdata/; needs
python3-jinja2)
"""
import gzip
import json
import os
import sys

from jinja2.sandbox import ImmutableSandboxedEnvironment

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "..", "testdata")
OUT = os.path.join(HERE, "math_prompts")
N = 2
SETS = ["math500", "aime24", "amc23", "minerva_math", "olympiadbench"]

BOXED = "Please reason step by step, and put your final answer within \\boxed{}."
# The input templates of the prompt types, {input} marking the question.
TEMPLATES = {
    "qwen25-math-cot": "<|im_start|>system\n" + BOXED + "<|im_end|>\n"
    "<|im_start|>user\n{input}<|im_end|>\n<|im_start|>assistant\n",
    "qwen-boxed": "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "<|im_start|>user\n{input}\n" + BOXED + "<|im_end|>\n<|im_start|>assistant\n",
    "cot": "Question: {input}\nAnswer: ",
    "cot-fewshot": "Question: {input}\nAnswer: ",
    "deepseek-math": "User: {input}\n" + BOXED + "\n\nAssistant:",
    "mathstral": "{input}\n" + BOXED,
}
# The system and user messages that a ChatML template turns into the reference string.
CHAT_MESSAGES = {
    "qwen25-math-cot": lambda q: [{"role": "system", "content": BOXED},
                                  {"role": "user", "content": q}],
    "qwen-boxed": lambda q: [{"role": "system", "content": "You are a helpful assistant."},
                             {"role": "user", "content": q + "\n" + BOXED}],
}


def data_open(path):
    if os.path.exists(path):
        return open(path, encoding="utf-8")
    return gzip.open(path + ".gz", "rt", encoding="utf-8")


def gold(name, doc):
    if name == "minerva_math":
        return None  # boxed expressions; never a yes/no word in this set
    if name == "olympiadbench":
        return str(doc["final_answer"][0]).replace("$", "")
    return str(doc["answer"])


def question(name, doc):
    q = doc["question"] if "question" in doc else doc["problem"]
    g = (gold(name, doc) or "").lower()
    if g in ("true", "false"):
        q += " (True or False)"
    if g in ("yes", "no"):
        q += " (Yes or No)"
    return q.strip()


with data_open(os.path.join(DATA, "qwen-tokenizer", "qwen2.5", "tokenizer_config.json")) as f:
    template_src = json.load(f)["chat_template"]
env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
chat_template = env.from_string(template_src)


def render(messages):
    return chat_template.render(messages=messages, add_generation_prompt=True, tools=None)


docs = {}
for name in SETS:
    with data_open(os.path.join(DATA, "math", name, "test.jsonl")) as f:
        docs[name] = [json.loads(line) for line in f][:N]

with open(os.path.join(HERE, "math_cot_exemplars.json"), encoding="utf-8") as f:
    exemplars = json.load(f)


def demos(style, name):
    if style != "cot-fewshot":
        return ""
    shots = exemplars["minerva_math" if name == "minerva_math" else "math"]
    return "\n\n\n".join("Question: " + e["question"] + "\nAnswer: " + e["solution"]
                          for e in shots) + "\n\n\n"


os.makedirs(OUT, exist_ok=True)
for style, template in TEMPLATES.items():
    out = {"style": style, "plain": {}, "chat": {}}
    for name in SETS:
        plain, chat = [], []
        for doc in docs[name]:
            q = question(name, doc)
            prompt = (demos(style, name) + template.replace("{input}", q)).strip(" ")
            plain.append(prompt)
            if style in CHAT_MESSAGES:
                assert render(CHAT_MESSAGES[style](q)) == prompt, (style, name)
                chat.append(prompt)
            else:
                chat.append(render([{"role": "user", "content": prompt.strip()}]))
        out["plain"][name] = plain
        out["chat"][name] = chat
    with open(os.path.join(OUT, style + ".json"), "w", encoding="utf-8") as f:
        json.dump(out, f, indent=1, ensure_ascii=False)
        f.write("\n")
print("wrote", OUT)
