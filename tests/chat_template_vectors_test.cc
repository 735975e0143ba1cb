// Golden chat-template tests: every row of chat_template_vectors.jsonl (rendered by Python Jinja2
// and @huggingface/jinja) must render byte-identically and tokenize to its ids; Qwen3, Llama-3,
// Llama-3.1 and plain ChatML templates render known conversations exactly.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "base/fs.h"
#include "text/chat_template.h"
#include "text/tokenizer.h"

namespace rvec {
namespace {

namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;

fs::path DataDir() { return TestDataDir(RVEC_TEST_DATA_DEFAULT) / "qwen-tokenizer"; }

std::vector<ojson> ReadRows() {
  const fs::path path = DataDir() / "chat_template_vectors.jsonl";
  std::vector<ojson> rows;
  auto text = ReadDataFile(path);  // plain or PATH.gz
  EXPECT_TRUE(text.ok()) << "missing test data file: " << text.status().message();
  std::istringstream in(text.ok() ? *text : std::string());
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    ojson row = ojson::parse(line, nullptr, false);
    EXPECT_FALSE(row.is_discarded()) << path << ": bad JSON line";
    if (!row.is_discarded()) rows.push_back(std::move(row));
  }
  return rows;
}

// A model directory holding only `config_name` copied as tokenizer_config.json, so the template
// comes from the config's "chat_template" string rather than chat_template.jinja.
fs::path ConfigOnlyDir(const std::string& config_name, const std::string& tag) {
  const fs::path dir = fs::path(::testing::TempDir()) / ("rvec_chat_template_" + tag);
  fs::remove_all(dir);
  fs::create_directories(dir);
  fs::copy_file(DataDir() / "qwen2.5" / config_name, dir / "tokenizer_config.json");
  return dir;
}

OrderedChatTemplateInputs InputsOf(const ojson& row) {
  OrderedChatTemplateInputs in;
  in.messages = row["messages"];
  in.add_generation_prompt = row["add_generation_prompt"].get<bool>();
  return in;
}

TEST(ChatTemplateVectors, EveryRowRendersByteIdentically) {
  auto instruct_jinja = ChatTemplate::FromModelDir(DataDir() / "qwen2.5");
  ASSERT_TRUE(instruct_jinja.ok()) << instruct_jinja.status().message();
  EXPECT_NE(instruct_jinja->source_label().find("chat_template.jinja"), std::string::npos);
  auto instruct_config =
      ChatTemplate::FromModelDir(ConfigOnlyDir("tokenizer_config.json", "instruct"));
  ASSERT_TRUE(instruct_config.ok()) << instruct_config.status().message();
  auto base_config =
      ChatTemplate::FromModelDir(ConfigOnlyDir("tokenizer_config.base.json", "base"));
  ASSERT_TRUE(base_config.ok()) << base_config.status().message();
  EXPECT_EQ(base_config->eos_token(), "<|endoftext|>");
  EXPECT_EQ(instruct_config->eos_token(), "<|im_end|>");
  EXPECT_EQ(instruct_config->bos_token(), "");

  const auto rows = ReadRows();
  ASSERT_EQ(rows.size(), 74u);
  size_t instruct = 0, base = 0;
  for (size_t i = 0; i < rows.size(); ++i) {
    const ojson& row = rows[i];
    const std::string name = row["template"].get<std::string>();
    const std::string expected = row["rendered"].get<std::string>();
    std::vector<const ChatTemplate*> templates;
    if (name == "qwen2.5-instruct") {
      templates = {&*instruct_jinja, &*instruct_config};
      ++instruct;
    } else if (name == "qwen2.5-base") {
      templates = {&*base_config};
      ++base;
    } else {
      ADD_FAILURE() << "row " << i << ": unknown template " << name;
      continue;
    }
    for (const ChatTemplate* t : templates) {
      auto rendered = t->Render(InputsOf(row));
      ASSERT_TRUE(rendered.ok()) << "row " << i << ": " << rendered.status().message();
      EXPECT_EQ(*rendered, expected)
          << "row " << i << " (" << name << ", " << t->source_label() << ")";
    }
  }
  EXPECT_EQ(instruct, 63u);
  EXPECT_EQ(base, 11u);
}

TEST(ChatTemplateVectors, RenderedRowsTokenizeToTheirIds) {
  auto tokenizer = Tokenizer::FromModelDir(DataDir() / "qwen2.5");
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status().message();
  auto instruct = ChatTemplate::FromModelDir(DataDir() / "qwen2.5");
  ASSERT_TRUE(instruct.ok()) << instruct.status().message();
  auto base = ChatTemplate::FromModelDir(ConfigOnlyDir("tokenizer_config.base.json", "base_ids"));
  ASSERT_TRUE(base.ok()) << base.status().message();
  const auto rows = ReadRows();
  ASSERT_FALSE(rows.empty());
  for (size_t i = 0; i < rows.size(); ++i) {
    const ojson& row = rows[i];
    const ChatTemplate& t = row["template"] == "qwen2.5-base" ? *base : *instruct;
    auto rendered = t.Render(InputsOf(row));
    ASSERT_TRUE(rendered.ok()) << "row " << i << ": " << rendered.status().message();
    const std::vector<int32_t> ids = tokenizer->Encode(*rendered, false);
    EXPECT_EQ(ids, row["ids"].get<std::vector<int32_t>>()) << "row " << i;
  }
}

TEST(ChatTemplateVectors, SortedKeyInputsRenderTheSame) {
  // The nlohmann::json entry point (sorted keys) gives the same text for tool-free rows.
  auto t = ChatTemplate::FromModelDir(DataDir() / "qwen2.5");
  ASSERT_TRUE(t.ok()) << t.status().message();
  const auto rows = ReadRows();
  ASSERT_FALSE(rows.empty());
  for (size_t i = 0; i < rows.size(); i += 7) {
    if (rows[i]["template"] != "qwen2.5-instruct") continue;
    ChatTemplateInputs in;
    in.messages = nlohmann::json::parse(rows[i]["messages"].dump());
    in.add_generation_prompt = rows[i]["add_generation_prompt"].get<bool>();
    auto rendered = t->Render(in);
    ASSERT_TRUE(rendered.ok()) << rendered.status().message();
    EXPECT_EQ(*rendered, rows[i]["rendered"].get<std::string>()) << "row " << i;
  }
}

// Template texts. Llama-3 (Meta-Llama-3-8B-Instruct) and Llama-3.1 (Llama-3.1-8B-Instruct) are the
// public chat_template strings of those models' tokenizer_config.json, as quoted verbatim in public
// GitHub sources; ChatML is the common minimal template. Qwen3's comes from the shared data.
constexpr const char* kLlama3 =
    R"JINJA({% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %})JINJA";

constexpr const char* kLlama31 = R"JINJA({{- bos_token }}
{%- if custom_tools is defined %}
    {%- set tools = custom_tools %}
{%- endif %}
{%- if not tools_in_user_message is defined %}
    {%- set tools_in_user_message = true %}
{%- endif %}
{%- if not date_string is defined %}
    {%- set date_string = "26 Jul 2024" %}
{%- endif %}
{%- if not tools is defined %}
    {%- set tools = none %}
{%- endif %}

{#- This block extracts the system message, so we can slot it into the right place. #}
{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content']|trim %}
    {%- set messages = messages[1:] %}
{%- else %}
    {%- set system_message = "" %}
{%- endif %}

{#- System message + builtin tools #}
{{- "<|start_header_id|>system<|end_header_id|>\n\n" }}
{%- if builtin_tools is defined or tools is not none %}
    {{- "Environment: ipython\n" }}
{%- endif %}
{%- if builtin_tools is defined %}
    {{- "Tools: " + builtin_tools | reject('equalto', 'code_interpreter') | join(", ") + "\n\n"}}
{%- endif %}
{{- "Cutting Knowledge Date: December 2023\n" }}
{{- "Today Date: " + date_string + "\n\n" }}
{%- if tools is not none and not tools_in_user_message %}
    {{- "You have access to the following functions. To call a function, please respond with JSON for a function call." }}
    {{- 'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.' }}
    {{- "Do not use variables.\n\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\n\n" }}
    {%- endfor %}
{%- endif %}
{{- system_message }}
{{- "<|eot_id|>" }}

{#- Custom tools are passed in a user message with some extra guidance #}
{%- if tools_in_user_message and not tools is none %}
    {#- Extract the first user message so we can plug it in here #}
    {%- if messages | length != 0 %}
        {%- set first_user_message = messages[0]['content']|trim %}
        {%- set messages = messages[1:] %}
    {%- else %}
        {{- raise_exception("Cannot put tools in the first user message when there's no first user message!") }}
{%- endif %}
    {{- '<|start_header_id|>user<|end_header_id|>\n\n' -}}
    {{- "Given the following functions, please respond with a JSON for a function call " }}
    {{- "with its proper arguments that best answers the given prompt.\n\n" }}
    {{- 'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.' }}
    {{- "Do not use variables.\n\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\n\n" }}
    {%- endfor %}
    {{- first_user_message + "<|eot_id|>"}}
{%- endif %}

{%- for message in messages %}
    {%- if not (message.role == 'ipython' or message.role == 'tool' or 'tool_calls' in message) %}
        {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' }}
    {%- elif 'tool_calls' in message %}
        {%- if not message.tool_calls|length == 1 %}
            {{- raise_exception("This model only supports single tool-calls at once!") }}
        {%- endif %}
        {%- set tool_call = message.tool_calls[0].function %}
        {%- if builtin_tools is defined and tool_call.name in builtin_tools %}
            {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' -}}
            {{- "<|python_tag|>" + tool_call.name + ".call(" }}
            {%- for arg_name, arg_val in tool_call.arguments | items %}
                {{- arg_name + '="' + arg_val + '"' }}
                {%- if not loop.last %}
                    {{- ", " }}
                {%- endif %}
                {%- endfor %}
            {{- ")" }}
        {%- else  %}
            {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' -}}
            {{- '{"name": "' + tool_call.name + '", ' }}
            {{- '"parameters": ' }}
            {{- tool_call.arguments | tojson }}
            {{- "}" }}
        {%- endif %}
        {%- if builtin_tools is defined %}
            {#- This means we're in ipython mode #}
            {{- "<|eom_id|>" }}
        {%- else %}
            {{- "<|eot_id|>" }}
        {%- endif %}
    {%- elif message.role == "tool" or message.role == "ipython" %}
        {{- "<|start_header_id|>ipython<|end_header_id|>\n\n" }}
        {%- if message.content is mapping or message.content is iterable %}
            {{- message.content | tojson }}
        {%- else %}
            {{- message.content }}
        {%- endif %}
        {{- "<|eot_id|>" }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' }}
{%- endif %}
)JINJA";

constexpr const char* kChatML =
    R"JINJA({% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %})JINJA";

struct Case {
  const char* tmpl;
  const char* label;
  const char* messages;
  bool add_generation_prompt;
  const char* tools;
  const char* extra;
  const char* expected;
};

// Expected texts were produced with Python Jinja2 3.1.6 set up as transformers'
// apply_chat_template sets it up (sandbox, trim_blocks, lstrip_blocks, json.dumps tojson), and
// checked by hand against the models' documented prompt formats (Llama-3: "<|begin_of_text|>",
// "<|start_header_id|>role<|end_header_id|>\n\n", content trimmed, "<|eot_id|>"; Qwen3: past
// turns lose their <think> blocks, enable_thinking=false adds an empty one).
const Case kCases[] = {
    {"llama3", "user_only_gen", R"EXP([{"role": "user", "content": "Hello!"}])EXP", true,
     R"EXP(null)EXP", R"EXP({})EXP", R"EXP(<|begin_of_text|><|start_header_id|>user<|end_header_id|>

Hello!<|eot_id|><|start_header_id|>assistant<|end_header_id|>

)EXP"},
    {"llama3", "system_trimmed",
     R"EXP([{"role": "system", "content": "  Be brief.\n"}, {"role": "user", "content": " 2+2? "}, {"role": "assistant", "content": "4\n\n"}])EXP",
     false, R"EXP(null)EXP", R"EXP({})EXP",
     R"EXP(<|begin_of_text|><|start_header_id|>system<|end_header_id|>

Be brief.<|eot_id|><|start_header_id|>user<|end_header_id|>

2+2?<|eot_id|><|start_header_id|>assistant<|end_header_id|>

4<|eot_id|>)EXP"},
    {"llama3.1", "system_and_user",
     R"EXP([{"role": "system", "content": "You are helpful."}, {"role": "user", "content": "Hi"}])EXP",
     true, R"EXP(null)EXP", R"EXP({})EXP",
     R"EXP(<|begin_of_text|><|start_header_id|>system<|end_header_id|>

Cutting Knowledge Date: December 2023
Today Date: 26 Jul 2024

You are helpful.<|eot_id|><|start_header_id|>user<|end_header_id|>

Hi<|eot_id|><|start_header_id|>assistant<|end_header_id|>

)EXP"},
    {"llama3.1", "no_system_multi_turn",
     R"EXP([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}, {"role": "user", "content": " Bye "}])EXP",
     false, R"EXP(null)EXP", R"EXP({"date_string": "01 Jan 2025"})EXP",
     R"EXP(<|begin_of_text|><|start_header_id|>system<|end_header_id|>

Cutting Knowledge Date: December 2023
Today Date: 01 Jan 2025

<|eot_id|><|start_header_id|>user<|end_header_id|>

Hi<|eot_id|><|start_header_id|>assistant<|end_header_id|>

Hello<|eot_id|><|start_header_id|>user<|end_header_id|>

Bye<|eot_id|>)EXP"},
    {"llama3.1", "tools_in_user_message",
     R"EXP([{"role": "user", "content": "Weather in Paris?"}])EXP", true,
     R"EXP([{"type": "function", "function": {"name": "get_weather", "description": "Get the weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}])EXP",
     R"EXP({})EXP", R"EXP(<|begin_of_text|><|start_header_id|>system<|end_header_id|>

Environment: ipython
Cutting Knowledge Date: December 2023
Today Date: 26 Jul 2024

<|eot_id|><|start_header_id|>user<|end_header_id|>

Given the following functions, please respond with a JSON for a function call with its proper arguments that best answers the given prompt.

Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.Do not use variables.

{
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the weather",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {
                    "type": "string"
                }
            },
            "required": [
                "city"
            ]
        }
    }
}

Weather in Paris?<|eot_id|><|start_header_id|>assistant<|end_header_id|>

)EXP"},
    {"llama3.1", "tool_call_and_result",
     R"EXP([{"role": "system", "content": "sys"}, {"role": "user", "content": "Weather?"}, {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]}, {"role": "ipython", "content": {"temp": 20}}, {"role": "assistant", "content": "20C"}])EXP",
     false,
     R"EXP([{"type": "function", "function": {"name": "get_weather", "description": "Get the weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}])EXP",
     R"EXP({"tools_in_user_message": false})EXP",
     R"EXP(<|begin_of_text|><|start_header_id|>system<|end_header_id|>

Environment: ipython
Cutting Knowledge Date: December 2023
Today Date: 26 Jul 2024

You have access to the following functions. To call a function, please respond with JSON for a function call.Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.Do not use variables.

{
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the weather",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {
                    "type": "string"
                }
            },
            "required": [
                "city"
            ]
        }
    }
}

sys<|eot_id|><|start_header_id|>user<|end_header_id|>

Weather?<|eot_id|><|start_header_id|>assistant<|end_header_id|>

{"name": "get_weather", "parameters": {"city": "Paris"}}<|eot_id|><|start_header_id|>ipython<|end_header_id|>

{"temp": 20}<|eot_id|><|start_header_id|>assistant<|end_header_id|>

20C<|eot_id|>)EXP"},
    {"qwen3", "user_gen", R"EXP([{"role": "user", "content": "Hello!"}])EXP", true, R"EXP(null)EXP",
     R"EXP({})EXP", R"EXP(<|im_start|>user
Hello!<|im_end|>
<|im_start|>assistant
)EXP"},
    {"qwen3", "no_thinking", R"EXP([{"role": "user", "content": "Hello!"}])EXP", true,
     R"EXP(null)EXP", R"EXP({"enable_thinking": false})EXP", R"EXP(<|im_start|>user
Hello!<|im_end|>
<|im_start|>assistant
<think>

</think>

)EXP"},
    {"qwen3", "strips_past_reasoning",
     R"EXP([{"role": "system", "content": "S"}, {"role": "user", "content": "q1"}, {"role": "assistant", "content": "<think>\nr1\n</think>\n\na1"}, {"role": "user", "content": "q2"}, {"role": "assistant", "content": "<think>\nr2\n</think>\n\na2"}])EXP",
     false, R"EXP(null)EXP", R"EXP({})EXP", R"EXP(<|im_start|>system
S<|im_end|>
<|im_start|>user
q1<|im_end|>
<|im_start|>assistant
a1<|im_end|>
<|im_start|>user
q2<|im_end|>
<|im_start|>assistant
<think>
r2
</think>

a2<|im_end|>
)EXP"},
    {"qwen3", "tools_and_tool_response",
     R"EXP([{"role": "user", "content": "Weather?"}, {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]}, {"role": "tool", "content": "20C"}, {"role": "tool", "content": "sunny"}])EXP",
     true,
     R"EXP([{"type": "function", "function": {"name": "get_weather", "description": "Get the weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}])EXP",
     R"EXP({})EXP", R"EXP(<|im_start|>system
# Tools

You may call one or more functions to assist with the user query.

You are provided with function signatures within <tools></tools> XML tags:
<tools>
{"type": "function", "function": {"name": "get_weather", "description": "Get the weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
</tools>

For each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:
<tool_call>
{"name": <function-name>, "arguments": <args-json-object>}
</tool_call><|im_end|>
<|im_start|>user
Weather?<|im_end|>
<|im_start|>assistant
<tool_call>
{"name": "get_weather", "arguments": {"city": "Paris"}}
</tool_call><|im_end|>
<|im_start|>user
<tool_response>
20C
</tool_response>
<tool_response>
sunny
</tool_response><|im_end|>
<|im_start|>assistant
)EXP"},
    {"chatml", "plain",
     R"EXP([{"role": "system", "content": "S"}, {"role": "user", "content": "U"}, {"role": "assistant", "content": "A"}])EXP",
     true, R"EXP(null)EXP", R"EXP({})EXP", R"EXP(<|im_start|>system
S<|im_end|>
<|im_start|>user
U<|im_end|>
<|im_start|>assistant
A<|im_end|>
<|im_start|>assistant
)EXP"},
};

TEST(ChatTemplateGolden, KnownTemplatesRenderKnownConversations) {
  auto qwen3 = ChatTemplate::FromModelDir(DataDir() / "qwen3");
  ASSERT_TRUE(qwen3.ok()) << qwen3.status().message();
  EXPECT_EQ(qwen3->eos_token(), "<|im_end|>");
  auto llama3 = ChatTemplate::Parse(kLlama3, "<|begin_of_text|>", "<|eot_id|>");
  ASSERT_TRUE(llama3.ok()) << llama3.status().message();
  auto llama31 = ChatTemplate::Parse(kLlama31, "<|begin_of_text|>", "<|eot_id|>");
  ASSERT_TRUE(llama31.ok()) << llama31.status().message();
  auto chatml = ChatTemplate::Parse(kChatML);
  ASSERT_TRUE(chatml.ok()) << chatml.status().message();
  size_t checked = 0;
  for (const Case& c : kCases) {
    const std::string name = c.tmpl;
    const ChatTemplate* t = name == "qwen3"      ? &*qwen3
                            : name == "llama3"   ? &*llama3
                            : name == "llama3.1" ? &*llama31
                                                 : &*chatml;
    OrderedChatTemplateInputs in;
    in.messages = ojson::parse(c.messages);
    in.tools = ojson::parse(c.tools);
    in.extra = ojson::parse(c.extra);
    in.add_generation_prompt = c.add_generation_prompt;
    auto rendered = t->Render(in);
    ASSERT_TRUE(rendered.ok()) << name << "/" << c.label << ": " << rendered.status().message();
    EXPECT_EQ(*rendered, c.expected) << name << "/" << c.label;
    ++checked;
  }
  EXPECT_EQ(checked, sizeof(kCases) / sizeof(kCases[0]));
}

TEST(ChatTemplateGolden, Llama3FirstMessageGetsBosAndContentIsTrimmed) {
  // Derived by hand from the template: bos_token only before the first turn, `| trim` binds to the
  // content alone (filters bind tighter than +).
  auto t = ChatTemplate::Parse(kLlama3, "<|begin_of_text|>", "<|eot_id|>");
  ASSERT_TRUE(t.ok()) << t.status().message();
  OrderedChatTemplateInputs in;
  in.messages =
      ojson::parse(R"([{"role":"user","content":"  a  "},{"role":"assistant","content":"b"}])");
  auto out = t->Render(in);
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ(*out,
            "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\na<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\nb<|eot_id|>");
}

TEST(ChatTemplateGolden, Llama31RejectsParallelToolCalls) {
  auto t = ChatTemplate::Parse(kLlama31, "<|begin_of_text|>", "<|eot_id|>");
  ASSERT_TRUE(t.ok()) << t.status().message();
  OrderedChatTemplateInputs in;
  in.messages = ojson::parse(R"([{"role":"user","content":"x"},{"role":"assistant","tool_calls":[
      {"function":{"name":"a","arguments":{}}},{"function":{"name":"b","arguments":{}}}]}])");
  auto out = t->Render(in);
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.status().message().find("This model only supports single tool-calls at once!"),
            std::string::npos)
      << out.status().message();
  EXPECT_NE(out.status().message().find("line 71"), std::string::npos) << out.status().message();
}

}  // namespace
}  // namespace rvec
