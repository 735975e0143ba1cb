// `rvec export gguf`: writes a model as one GGUF file that llama.cpp (and so ollama, LM Studio,
// node-llama-cpp) loads unchanged.
#include <cstdio>
#include <memory>
#include <string>

#include "base/progress.h"
#include "cli/command.h"
#include "cli/timed.h"
#include "model/gguf_export.h"

namespace rvec::cli {
namespace {

struct ExportGgufFlags {
  std::string model;
  std::string out;
  std::string dtype = "f32";
  std::string pre;
  bool force = false;
};

StatusOr<GgmlType> ParseGgufDtype(const std::string& s) {
  if (s == "f32") return GgmlType::kF32;
  if (s == "f16") return GgmlType::kF16;
  if (s == "bf16") return GgmlType::kBF16;
  return InvalidArgument("--dtype: '{}' is not one of f32, f16, bf16", s);
}

Status RunExportGguf(const ExportGgufFlags& f) {
  GgufExportOptions o;
  ASSIGN_OR_RETURN(o.dtype, ParseGgufDtype(f.dtype));
  o.pre = f.pre;
  o.force = f.force;
  ASSIGN_OR_RETURN(auto timed, RunWithProgress("export gguf", [&](Progress* progress) {
                     return ExportGguf(f.model, f.out, o, progress);
                   }));
  if (PrintJsonOrWarnings(timed)) return OkStatus();
  const GgufExportReport& r = timed.value;
  std::printf(
      "Wrote %s (GGUF v3, %s, %s): %zu tensors, %llu parameters, %zu tokens (pre-tokenizer "
      "%s), %s in %s\n",
      r.output.c_str(), r.architecture.c_str(), r.dtype.c_str(), r.tensors,
      static_cast<unsigned long long>(r.parameters), r.vocab, r.pre.c_str(),
      HumanBytes(r.file_bytes).c_str(), HumanDuration(timed.seconds).c_str());
  return OkStatus();
}

const RegisterCommand kExport(
    "export", "Export a model to another runtime's format (GGUF for llama.cpp / ollama)", 60,
    [](CLI::App& app) -> std::function<Status()> {
      auto f = std::make_shared<ExportGgufFlags>();
      app.description(
          "Export a model directory to another runtime's format.\n\n"
          "Example:\n  rvec export gguf work/merged -o merged.gguf --dtype f16");
      app.require_subcommand(1);
      CLI::App* gguf = app.add_subcommand(
          "gguf", "One GGUF v3 file for llama.cpp, ollama, LM Studio and node-llama-cpp");
      gguf->footer(
          "Write MODEL (a Hugging Face directory of a Qwen2, Llama, Qwen3 or OLMo 2 model) as one "
          "GGUF v3 file that llama.cpp loads unchanged: llama.cpp's architecture keys and tensor "
          "names, the byte-level BPE tokenizer (tokens, types, merges, pre-tokenizer type, "
          "BOS/EOS/PAD, add-BOS flag) and the chat template. Matrices are written in --dtype; "
          "1-D tensors (norms, biases) stay f32, as llama.cpp's converter keeps them. Data streams "
          "tensor by tensor in fixed chunks, so memory stays small for any model size; the file "
          "appears only when complete.\n\n"
          "Examples:\n"
          "  rvec export gguf work/merged -o merged.gguf\n"
          "  rvec export gguf Qwen2.5-1.5B/ -o qwen.gguf --dtype bf16 --json\n"
          "  printf 'FROM ./merged.gguf\\n' > Modelfile && ollama create merged -f Modelfile");
      gguf->add_option("model", f->model, "Model directory")->required();
      gguf->add_option("-o,--out", f->out, "Output .gguf file")->required();
      gguf->add_option("--dtype", f->dtype, "Matrix dtype: f32 (default), f16 or bf16");
      gguf->add_option("--pre", f->pre,
                       "llama.cpp pre-tokenizer type (tokenizer.ggml.pre), for a tokenizer whose "
                       "Split regex rvec does not recognise");
      gguf->add_flag("--force", f->force, "Replace an existing output file");
      AddCommonFlags(*gguf);
      return [f]() { return RunExportGguf(*f); };
    });

}  // namespace
}  // namespace rvec::cli
