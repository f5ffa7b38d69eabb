#pragma once
// A small SVG document writer: lines, polylines, paths, rectangles, circles and text, in pixel coordinates
// (origin top-left, y down), with optional rectangular clipping. Numbers are written with 2 decimals, text is
// XML-escaped, and save() writes atomically. Charts are built on top of it in chart.hpp.
#include <kiln/io/atomic_file.hpp>

#include <cmath>
#include <cstdio>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kiln::plot {

struct point {
  double x = 0, y = 0;
};

// Stroke of a line or outline: CSS colour, width in pixels, dash pattern ("" solid, e.g. "6 4" dashed).
struct stroke {
  std::string color = "#222";
  double width = 1;
  std::string dash = "";
};

inline std::string xml_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

// A coordinate: 2 decimals, no trailing zeros; non-finite values (which SVG cannot hold) become 0 — callers
// clip or drop such points before they get here.
inline std::string coord(double v) {
  if (!std::isfinite(v)) v = 0;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", v);
  std::string s = buf;
  while (!s.empty() && s.back() == '0') s.pop_back();
  if (!s.empty() && s.back() == '.') s.pop_back();
  if (s == "-0") s = "0";
  return s;
}

class svg {
 public:
  svg(double width, double height) : width_(width), height_(height) {}

  double width() const { return width_; }
  double height() const { return height_; }

  void rect(double x, double y, double w, double h, std::string_view fill, const stroke& s = {"none", 0, ""}) {
    body_ += "<rect x=\"" + coord(x) + "\" y=\"" + coord(y) + "\" width=\"" + coord(w) + "\" height=\"" + coord(h) +
             "\" fill=\"" + std::string(fill) + "\"" + stroke_attributes(s) + "/>\n";
  }
  void line(point a, point b, const stroke& s) {
    body_ += "<line x1=\"" + coord(a.x) + "\" y1=\"" + coord(a.y) + "\" x2=\"" + coord(b.x) + "\" y2=\"" +
             coord(b.y) + "\"" + stroke_attributes(s) + "/>\n";
  }
  void polyline(const std::vector<point>& pts, const stroke& s) {
    if (pts.size() < 2) return;
    std::string p;
    for (const point& q : pts) p += coord(q.x) + "," + coord(q.y) + " ";
    p.pop_back();
    body_ += "<polyline points=\"" + p + "\" fill=\"none\"" + stroke_attributes(s) +
             " stroke-linejoin=\"round\" stroke-linecap=\"round\"/>\n";
  }
  // d: SVG path data ("M x y L x y ...").
  void path(std::string_view d, const stroke& s, std::string_view fill = "none") {
    body_ += "<path d=\"" + std::string(d) + "\" fill=\"" + std::string(fill) + "\"" + stroke_attributes(s) + "/>\n";
  }
  void circle(point c, double r, std::string_view fill, const stroke& s = {"none", 0, ""}) {
    body_ += "<circle cx=\"" + coord(c.x) + "\" cy=\"" + coord(c.y) + "\" r=\"" + coord(r) + "\" fill=\"" +
             std::string(fill) + "\"" + stroke_attributes(s) + "/>\n";
  }

  enum class anchor { start, middle, end };
  // Text with its baseline at y; rotate_deg turns it about (x, y) (-90 for a vertical axis label).
  void text(point at, std::string_view s, double size = 12, anchor a = anchor::start, double rotate_deg = 0,
            bool bold = false, std::string_view color = "#222") {
    static constexpr const char* anchors[] = {"start", "middle", "end"};
    body_ += "<text x=\"" + coord(at.x) + "\" y=\"" + coord(at.y) + "\" font-size=\"" + coord(size) +
             "\" text-anchor=\"" + anchors[static_cast<int>(a)] + "\" fill=\"" + std::string(color) + "\"";
    if (bold) body_ += " font-weight=\"bold\"";
    if (rotate_deg != 0)
      body_ += " transform=\"rotate(" + coord(rotate_deg) + " " + coord(at.x) + " " + coord(at.y) + ")\"";
    body_ += ">" + xml_escape(s) + "</text>\n";
  }

  // Everything drawn until end_clip() is clipped to the rectangle.
  void begin_clip(double x, double y, double w, double h) {
    const std::string id = "clip" + std::to_string(++clips_);
    defs_ += "<clipPath id=\"" + id + "\"><rect x=\"" + coord(x) + "\" y=\"" + coord(y) + "\" width=\"" + coord(w) +
             "\" height=\"" + coord(h) + "\"/></clipPath>\n";
    body_ += "<g clip-path=\"url(#" + id + ")\">\n";
  }
  void end_clip() { body_ += "</g>\n"; }

  std::string str() const {
    std::string out = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + coord(width_) + "\" height=\"" +
                      coord(height_) + "\" viewBox=\"0 0 " + coord(width_) + " " + coord(height_) +
                      "\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\">\n";
    if (!defs_.empty()) out += "<defs>\n" + defs_ + "</defs>\n";
    out += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
    return out + body_ + "</svg>\n";
  }
  void save(const std::string& path) const { io::write_file_atomic(path, str()); }

 private:
  static std::string stroke_attributes(const stroke& s) {
    if (s.color == "none" || s.width <= 0) return "";
    std::string a = " stroke=\"" + s.color + "\" stroke-width=\"" + coord(s.width) + "\"";
    if (!s.dash.empty()) a += " stroke-dasharray=\"" + s.dash + "\"";
    return a;
  }

  double width_, height_;
  std::string defs_, body_;
  int clips_ = 0;
};

}  // namespace kiln::plot
