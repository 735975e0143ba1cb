// Unit tests of the model-card writer's Markdown layout and of the reports' --json objects.
#include "merge/model_card.h"

#include <gtest/gtest.h>

#include "merge/control.h"
#include "merge/merge.h"
#include "merge/vector.h"

namespace rvec::merge {
namespace {

TEST(ModelCardTest, BlocksAreSeparatedByOneBlankLine) {
  ModelCard card;
  card.FrontMatter(true, {"rvec", "merge"})
      .Title("out")
      .WrittenBy("1.2.3", "`rvec merge`, method `ties`", "on T")
      .Heading("Inputs")
      .Table({"model", "path"}, {{"a", "b"}, {"c", ""}})
      .Code("yaml", "x: 1")
      .List({"one", "two"})
      .List({})
      .Paragraph("Done.");
  EXPECT_EQ(card.text(),
            "---\nlibrary_name: transformers\ntags:\n- rvec\n- merge\n---\n\n# out\n\n"
            "Written by rvec 1.2.3 (`rvec merge`, method `ties`) on T.\n\n## Inputs\n\n"
            "| model | path |\n|---|---|\n| a | b |\n| c |  |\n\n```yaml\nx: 1\n```\n\n"
            "- one\n- two\n\nDone.\n");
}

TEST(ModelCardTest, NoFrontMatterAndNamelessHeader) {
  ModelCard card;
  card.Title("Vector").Table({"", ""}, {{"size", "1"}});
  EXPECT_EQ(card.text(), "# Vector\n\n| | |\n|---|---|\n| size | 1 |\n");
}

TEST(ReportJsonTest, KeysOfEachCommand) {
  ApplyReport apply;
  apply.out = "o";
  apply.model = "m";
  apply.formula = "f";
  apply.tensors_changed = 2;
  const nlohmann::json a = apply.ToJson();
  EXPECT_EQ(a["output"], "o");
  EXPECT_EQ(a["model"], "m");
  EXPECT_EQ(a["tensors_changed"], 2);
  EXPECT_EQ(a.size(), 9u);

  ExtractReport extract;
  extract.dtype = DType::kBF16;
  const nlohmann::json e = extract.ToJson();
  EXPECT_EQ(e["dtype"], "BF16");
  EXPECT_TRUE(e.contains("narrowing_relative_l2_error"));
  EXPECT_EQ(e.size(), 12u);

  ControlReport control;
  control.seed = 7;
  control.kind = "gaussian";
  control.match = "rows";
  const nlohmann::json c = control.ToJson();
  EXPECT_EQ(c["seed"], 7);
  EXPECT_EQ(c["match"], "rows");
  EXPECT_EQ(c.size(), 10u);

  MergeReport merge;
  merge.method = MergeMethod::kTies;
  merge.donor = "base";
  const nlohmann::json m = merge.ToJson();
  EXPECT_EQ(m["method"], "ties");
  EXPECT_EQ(m["side_files_from"], "base");
  EXPECT_EQ(m.size(), 6u);
}

}  // namespace
}  // namespace rvec::merge
