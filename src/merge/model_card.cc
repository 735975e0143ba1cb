// Markdown blocks of the model cards, joined by blank lines.
#include "merge/model_card.h"

#include <fmt/format.h>

#include "base/fs.h"

namespace rvec::merge {

ModelCard& ModelCard::Block(std::string_view block) {
  if (!text_.empty()) text_ += '\n';
  text_ += block;
  return *this;
}

ModelCard& ModelCard::FrontMatter(bool transformers, const std::vector<std::string>& tags) {
  std::string block = "---\n";
  if (transformers) block += "library_name: transformers\n";
  block += "tags:\n";
  for (const std::string& tag : tags) block += fmt::format("- {}\n", tag);
  block += "---\n";
  return Block(block);
}

ModelCard& ModelCard::Title(std::string_view title) { return Block(fmt::format("# {}\n", title)); }

ModelCard& ModelCard::WrittenBy(std::string_view version, std::string_view invocation,
                                std::string_view origin) {
  return Block(fmt::format("Written by rvec {} ({}) {}.\n", version, invocation, origin));
}

ModelCard& ModelCard::Heading(std::string_view heading) {
  return Block(fmt::format("## {}\n", heading));
}

ModelCard& ModelCard::Paragraph(std::string_view text) { return Block(fmt::format("{}\n", text)); }

ModelCard& ModelCard::Code(std::string_view language, std::string_view text) {
  return Block(fmt::format("```{}\n{}\n```\n", language, text));
}

ModelCard& ModelCard::List(const std::vector<std::string>& items) {
  if (items.empty()) return *this;
  std::string block;
  for (const std::string& item : items) block += fmt::format("- {}\n", item);
  return Block(block);
}

ModelCard& ModelCard::Table(const std::vector<std::string>& header,
                            const std::vector<std::vector<std::string>>& rows) {
  std::string block = "|";
  for (const std::string& h : header) block += h.empty() ? " |" : fmt::format(" {} |", h);
  block += "\n|";
  for (size_t i = 0; i < header.size(); ++i) block += "---|";
  block += "\n";
  for (const auto& row : rows) {
    block += "|";
    for (const std::string& cell : row) block += fmt::format(" {} |", cell);
    block += "\n";
  }
  return Block(block);
}

Status ModelCard::Write(const std::filesystem::path& dir) const {
  return WriteFileAtomic(dir / "README.md", text_);
}

StatusOr<std::vector<std::string>> FinishWithCard(CheckpointWriter& writer, const ModelCard& card) {
  RETURN_IF_ERROR(card.Write(writer.staging_dir()));
  std::vector<std::string> shards = writer.ShardNames();
  RETURN_IF_ERROR(writer.Finish());
  return shards;
}

}  // namespace rvec::merge
