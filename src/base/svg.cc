// SVG chart building blocks (see svg.h).
#include "base/svg.h"

#include <fmt/format.h>

#include "base/html.h"

namespace rvec::svg {

Num::Num(double v) : text_(fmt::format("{}", v)) {}

Num Num::Fixed(double v, int decimals) {
  Num n;
  n.text_ = svg::Fixed(v, decimals);
  return n;
}

std::string Fixed(double v, int decimals) { return fmt::format("{:.{}f}", v, decimals); }

Element::Element(std::string_view tag) : tag_(tag) {}

Element& Element::Attr(std::string_view name, std::string_view value) {
  attrs_ += fmt::format(" {}=\"{}\"", name, HtmlEscape(value));
  return *this;
}

Element& Element::Attr(std::string_view name, const Num& value) {
  attrs_ += fmt::format(" {}=\"{}\"", name, value.str());
  return *this;
}

std::string Element::Empty() const { return fmt::format("<{}{}/>", tag_, attrs_); }

std::string Element::Open() const { return fmt::format("<{}{}>", tag_, attrs_); }

std::string Element::WithText(std::string_view text) const { return WithMarkup(HtmlEscape(text)); }

std::string Element::WithMarkup(std::string_view markup) const {
  return fmt::format("<{0}{1}>{2}</{0}>", tag_, attrs_, markup);
}

Element Document(const Num& width, const Num& height, bool view_box) {
  Element svg("svg");
  svg.Attr("xmlns", "http://www.w3.org/2000/svg").Attr("width", width).Attr("height", height);
  if (view_box) svg.Attr("viewBox", fmt::format("0 0 {} {}", width.str(), height.str()));
  return svg;
}

Element Line(const Num& x1, const Num& y1, const Num& x2, const Num& y2) {
  Element e("line");
  e.Attr("x1", x1).Attr("y1", y1).Attr("x2", x2).Attr("y2", y2);
  return e;
}

Element Rect(const Num& x, const Num& y, const Num& width, const Num& height) {
  Element e("rect");
  e.Attr("x", x).Attr("y", y).Attr("width", width).Attr("height", height);
  return e;
}

Element Circle(const Num& cx, const Num& cy, const Num& r) {
  Element e("circle");
  e.Attr("cx", cx).Attr("cy", cy).Attr("r", r);
  return e;
}

Element Text(const Num& x, const Num& y) {
  Element e("text");
  e.Attr("x", x).Attr("y", y);
  return e;
}

std::string Shorten(const std::string& label, size_t max, size_t keep) {
  return label.size() > max ? label.substr(0, keep) + "…" : label;
}

}  // namespace rvec::svg
