// The small SVG vocabulary of rvec's hand-drawn charts: numbers as they print, elements whose
// attributes keep the order given, and the document's opening and closing tags.
#pragma once

#include <concepts>
#include <string>
#include <string_view>

namespace rvec::svg {

// A number as it prints in an attribute. Each chart fixes its own precision, and with it the
// bytes of its output: integers print as themselves, doubles in fmt's shortest round-trip form
// (860.0 prints "860"), and Fixed() with a set number of decimals.
class Num {
 public:
  template <std::integral T>
  Num(T v) : text_(std::to_string(v)) {}  // NOLINT: implicit, so shapes take plain numbers
  Num(double v);                          // NOLINT
  static Num Fixed(double v, int decimals);
  const std::string& str() const { return text_; }

 private:
  Num() = default;
  std::string text_;
};

// `v` with `decimals` decimals, as in "{:.1f}": for coordinates and for numbers in labels.
std::string Fixed(double v, int decimals);

// One element. Attribute values and text are escaped (base/html.h); markup passed to WithMarkup
// is not.
class Element {
 public:
  explicit Element(std::string_view tag);
  Element& Attr(std::string_view name, std::string_view value);
  Element& Attr(std::string_view name, const Num& value);

  std::string Empty() const;                              // <tag a="1"/>
  std::string Open() const;                               // <tag a="1">
  std::string WithText(std::string_view text) const;      // <tag a="1">text</tag>
  std::string WithMarkup(std::string_view markup) const;  // <tag a="1">markup</tag>

 private:
  std::string tag_;
  std::string attrs_;
};

// <svg xmlns="http://www.w3.org/2000/svg" width="W" height="H"[ viewBox="0 0 W H"]; add the
// chart's font attributes, then Open() it and end the document with kEnd.
Element Document(const Num& width, const Num& height, bool view_box);
inline constexpr std::string_view kEnd = "</svg>";

// Shapes with their geometry first, in the order x, y, then size (lines: x1 y1 x2 y2); style
// attributes follow with Attr.
Element Line(const Num& x1, const Num& y1, const Num& x2, const Num& y2);
Element Rect(const Num& x, const Num& y, const Num& width, const Num& height);
Element Circle(const Num& cx, const Num& cy, const Num& r);
Element Text(const Num& x, const Num& y);

// `label` cut to `keep` characters plus "…" when longer than `max` bytes (axis labels under
// narrow bars).
std::string Shorten(const std::string& label, size_t max, size_t keep);

}  // namespace rvec::svg
