// Unit tests of the SVG chart vocabulary: number formats, attribute order, escaping.
#include "base/svg.h"

#include <gtest/gtest.h>

namespace rvec::svg {
namespace {

TEST(Svg, NumbersPrintAsEachChartAsksFor) {
  EXPECT_EQ(Num(640).str(), "640");
  EXPECT_EQ(Num(int64_t{-3}).str(), "-3");
  EXPECT_EQ(Num(size_t{7}).str(), "7");
  EXPECT_EQ(Num(860.0).str(), "860");  // shortest form: no ".0"
  EXPECT_EQ(Num(2.5).str(), "2.5");
  EXPECT_EQ(Num::Fixed(12.26, 1).str(), "12.3");
  EXPECT_EQ(Num::Fixed(108.0, 0).str(), "108");
  EXPECT_EQ(Fixed(0.5, 3), "0.500");
}

TEST(Svg, AttributesKeepTheirOrderAndAreEscaped) {
  EXPECT_EQ(Element("line").Attr("x1", 1).Attr("x2", 2).Attr("y1", 3).Attr("y2", 4).Empty(),
            "<line x1=\"1\" x2=\"2\" y1=\"3\" y2=\"4\"/>");
  EXPECT_EQ(Line(1, 2, 3, 4).Attr("stroke", "#ddd").Empty(),
            "<line x1=\"1\" y1=\"2\" x2=\"3\" y2=\"4\" stroke=\"#ddd\"/>");
  EXPECT_EQ(Text(1, 2).Attr("title", "a \"b\" & 'c'").WithText("<x> & y"),
            "<text x=\"1\" y=\"2\" title=\"a &quot;b&quot; &amp; 'c'\">&lt;x&gt; &amp; y</text>");
  EXPECT_EQ(Rect(0, 1, 2, 3).WithMarkup(Element("title").WithText("a<b")),
            "<rect x=\"0\" y=\"1\" width=\"2\" height=\"3\"><title>a&lt;b</title></rect>");
  EXPECT_EQ(Circle(Num::Fixed(1, 1), 2, 2.5).Empty(), "<circle cx=\"1.0\" cy=\"2\" r=\"2.5\"/>");
}

TEST(Svg, DocumentHeaderAndEnd) {
  EXPECT_EQ(Document(100, 50.0, false).Attr("font-size", 12).Open(),
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"100\" height=\"50\" "
            "font-size=\"12\">");
  EXPECT_EQ(Document(Num::Fixed(108, 0), 220, true).Open(),
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"108\" height=\"220\" "
            "viewBox=\"0 0 108 220\">");
  EXPECT_EQ(kEnd, "</svg>");
}

TEST(Svg, ShortensLongLabels) {
  EXPECT_EQ(Shorten("short", 10, 9), "short");
  EXPECT_EQ(Shorten("exactly10c", 10, 9), "exactly10c");
  EXPECT_EQ(Shorten("much longer label", 10, 9), "much long…");
}

}  // namespace
}  // namespace rvec::svg
