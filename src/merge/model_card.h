// The README.md model card of every output the merge library writes (extract, apply, merge,
// control, compress): one Markdown writer, so every card is laid out the same way.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "io/checkpoint_writer.h"

namespace rvec::merge {

// Blocks are separated by one blank line, in the order they are added. Every card starts with an
// optional Hugging Face front matter, then a title and the line saying which rvec wrote it.
class ModelCard {
 public:
  // The hub's YAML header: `library_name: transformers` (when `transformers`) and the tags.
  ModelCard& FrontMatter(bool transformers, const std::vector<std::string>& tags);
  ModelCard& Title(std::string_view title);
  // "Written by rvec VERSION (INVOCATION) ORIGIN." e.g. origin "on 2026-11-26T03:04:05Z".
  ModelCard& WrittenBy(std::string_view version, std::string_view invocation,
                       std::string_view origin);
  ModelCard& Heading(std::string_view heading);  // a level-2 section
  ModelCard& Paragraph(std::string_view text);
  // A fenced code block; `language` may be empty.
  ModelCard& Code(std::string_view language, std::string_view text);
  // A bulleted list; nothing is written for no items.
  ModelCard& List(const std::vector<std::string>& items);
  // A pipe table. An empty header cell is written "| |" (a key/value table without names).
  ModelCard& Table(const std::vector<std::string>& header,
                   const std::vector<std::vector<std::string>>& rows);

  const std::string& text() const { return text_; }
  // Writes DIR/README.md atomically.
  Status Write(const std::filesystem::path& dir) const;

 private:
  // Adds one block (ending in a newline), after a blank line unless it is the first.
  ModelCard& Block(std::string_view block);
  std::string text_;
};

// The last stage of every streamed output: the card beside the tensors, then the writer publishes
// the directory. Returns the shard names.
StatusOr<std::vector<std::string>> FinishWithCard(CheckpointWriter& writer, const ModelCard& card);

}  // namespace rvec::merge
