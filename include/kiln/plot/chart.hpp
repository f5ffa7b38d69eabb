#pragma once
// Line charts on an svg: "nice" axis ticks (1, 2 or 5 × 10^k), a plot frame mapping data to pixels, grid,
// axis labels, title, series as polylines with optional markers, and a legend.
//
//   plot::svg doc(900, 360);
//   plot::frame f = plot::draw_axes(doc, {0, 0, 450, 360}, {.title = "loss", .xlabel = "epoch", ...});
//   plot::draw_series(doc, f, {"train", xs, ys, "#1f77b4"});
//   plot::draw_legend(doc, f, {...});
#include <kiln/plot/svg.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <string>
#include <vector>

namespace kiln::plot {

// A rectangle in pixels.
struct box {
  double x = 0, y = 0, width = 0, height = 0;
};

struct range {
  double lo = 0, hi = 1;
};

// Tick positions covering [r.lo, r.hi] with about `target` intervals; the step is 1, 2 or 5 times a power of ten.
struct ticks {
  double step = 1;
  std::vector<double> at;
};
inline ticks nice_ticks(range r, int target = 5) {
  ticks t;
  const double span = r.hi - r.lo;
  if (!(span > 0) || !std::isfinite(span)) return t;
  const double raw = span / std::max(target, 1);
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  const double normalized = raw / magnitude;
  const double slack = 1 + 1e-9;  // 0.05 / 5 may come out as 1.0000000000000009 × 10^-2
  t.step = (normalized <= slack ? 1 : normalized <= 2 * slack ? 2 : normalized <= 5 * slack ? 5 : 10) * magnitude;
  // a small tolerance keeps ticks that sit on the ends despite rounding
  const double eps = t.step * 1e-9;
  for (double k = std::ceil((r.lo - eps) / t.step); k * t.step <= r.hi + eps; k += 1) t.at.push_back(k * t.step);
  return t;
}

// The range widened to whole tick steps (so the axis starts and ends on a labelled tick); a degenerate range
// is first widened around its value.
inline range nice_range(range r, int target = 5) {
  if (!std::isfinite(r.lo) || !std::isfinite(r.hi)) return {0, 1};
  if (r.hi < r.lo) std::swap(r.lo, r.hi);
  if (r.hi - r.lo < 1e-12 * std::max(1.0, std::abs(r.hi))) {
    const double pad = r.lo == 0 ? 1 : std::abs(r.lo) * 0.1;
    r = {r.lo - pad, r.hi + pad};
  }
  const double step = nice_ticks(r, target).step;
  return {std::floor(r.lo / step + 1e-9) * step, std::ceil(r.hi / step - 1e-9) * step};
}

// A tick's text with as many decimals as the step needs (0.25 → 2, 5 → 0).
inline std::string tick_label(double v, double step) {
  int decimals = 0;
  if (step > 0 && step < 1) decimals = static_cast<int>(std::ceil(-std::log10(step) - 1e-9));
  if (std::abs(v) < step * 1e-9) v = 0;  // no "-0.00"
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.*f", std::min(decimals, 12), v);
  return buf;
}

// Where data coordinates land in pixels (y grows upward in data, downward in pixels).
struct frame {
  box area;      // the plot area inside the axes
  range x, y;    // data ranges shown
  point at(double dx, double dy) const {
    return {area.x + (dx - x.lo) / (x.hi - x.lo) * area.width,
            area.y + area.height - (dy - y.lo) / (y.hi - y.lo) * area.height};
  }
};

struct axes_spec {
  std::string title, xlabel, ylabel;
  range x{0, 1}, y{0, 1};
  bool integer_x = false;  // ticks only at whole numbers (epochs)
};

// Draws title, grid, axes, ticks and labels in `panel`; returns the frame to draw data in.
inline frame draw_axes(svg& doc, box panel, const axes_spec& spec) {
  const double left = 70, right = 18, top = 36, bottom = 50;
  frame f{{panel.x + left, panel.y + top, panel.width - left - right, panel.height - top - bottom}, spec.x, spec.y};
  const stroke grid{"#e3e3e3", 1, ""}, axis{"#444", 1.2, ""}, tick_mark{"#444", 1, ""};
  ticks tx = nice_ticks(spec.x, std::max(2, static_cast<int>(f.area.width / 60)));
  if (spec.integer_x && tx.step < 1) {
    tx.step = 1;
    tx.at.clear();
    for (double v = std::ceil(spec.x.lo); v <= spec.x.hi; v += 1) tx.at.push_back(v);
  }
  const ticks ty = nice_ticks(spec.y, std::max(2, static_cast<int>(f.area.height / 50)));
  for (double v : tx.at) {
    const point p = f.at(v, spec.y.lo);
    doc.line({p.x, f.area.y}, {p.x, f.area.y + f.area.height}, grid);
    doc.line({p.x, p.y}, {p.x, p.y + 5}, tick_mark);
    doc.text({p.x, p.y + 19}, tick_label(v, tx.step), 12, svg::anchor::middle);
  }
  for (double v : ty.at) {
    const point p = f.at(spec.x.lo, v);
    doc.line({f.area.x, p.y}, {f.area.x + f.area.width, p.y}, grid);
    doc.line({p.x - 5, p.y}, {p.x, p.y}, tick_mark);
    doc.text({p.x - 8, p.y + 4}, tick_label(v, ty.step), 12, svg::anchor::end);
  }
  doc.line({f.area.x, f.area.y + f.area.height}, {f.area.x + f.area.width, f.area.y + f.area.height}, axis);
  doc.line({f.area.x, f.area.y}, {f.area.x, f.area.y + f.area.height}, axis);
  doc.text({f.area.x + f.area.width / 2, panel.y + 22}, spec.title, 15, svg::anchor::middle, 0, true);
  doc.text({f.area.x + f.area.width / 2, panel.y + panel.height - 10}, spec.xlabel, 13, svg::anchor::middle);
  doc.text({panel.x + 18, f.area.y + f.area.height / 2}, spec.ylabel, 13, svg::anchor::middle, -90);
  return f;
}

struct series {
  std::string name;
  std::vector<double> x, y;
  std::string color = "#1f77b4";
  std::string dash = "";
  bool markers = true;
  double width = 2;
};

// The smallest range holding every finite value of the series' x (or y).
inline range data_range(const std::vector<series>& all, bool of_y) {
  range r{std::numeric_limits<double>::infinity(), -std::numeric_limits<double>::infinity()};
  for (const series& s : all)
    for (double v : of_y ? s.y : s.x)
      if (std::isfinite(v)) r = {std::min(r.lo, v), std::max(r.hi, v)};
  return r.lo <= r.hi ? r : range{0, 1};
}

// The series as a polyline clipped to the frame; a non-finite value breaks the line.
inline void draw_series(svg& doc, const frame& f, const series& s) {
  doc.begin_clip(f.area.x - 4, f.area.y - 4, f.area.width + 8, f.area.height + 8);
  std::vector<point> run;
  auto flush = [&] {
    doc.polyline(run, {s.color, s.width, s.dash});
    run.clear();
  };
  const std::size_t n = std::min(s.x.size(), s.y.size());
  for (std::size_t i = 0; i < n; ++i) {
    if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) {
      flush();
      continue;
    }
    run.push_back(f.at(s.x[i], s.y[i]));
  }
  flush();
  if (s.markers)
    for (std::size_t i = 0; i < n; ++i)
      if (std::isfinite(s.x[i]) && std::isfinite(s.y[i])) doc.circle(f.at(s.x[i], s.y[i]), 3.2, s.color, {"white", 1, ""});
  doc.end_clip();
}

enum class corner { top_right, top_left, bottom_right, bottom_left };

// A boxed legend in a corner of the plot area: one line swatch (with marker if the series has them) per series.
inline void draw_legend(svg& doc, const frame& f, const std::vector<series>& all, corner where = corner::top_right) {
  if (all.empty()) return;
  std::size_t longest = 0;
  for (const series& s : all) longest = std::max(longest, s.name.size());
  const double row = 20, pad = 8, swatch = 26;
  const double w = pad * 3 + swatch + 7.2 * static_cast<double>(longest), h = pad * 2 + row * static_cast<double>(all.size()) - 4;
  const bool right = where == corner::top_right || where == corner::bottom_right;
  const bool top = where == corner::top_right || where == corner::top_left;
  const double x = right ? f.area.x + f.area.width - w - 10 : f.area.x + 10;
  const double y = top ? f.area.y + 10 : f.area.y + f.area.height - h - 10;
  doc.rect(x, y, w, h, "white", {"#999", 1, ""});
  for (std::size_t i = 0; i < all.size(); ++i) {
    const series& s = all[i];
    const double cy = y + pad + row * static_cast<double>(i) + 7;
    doc.line({x + pad, cy}, {x + pad + swatch, cy}, {s.color, s.width, s.dash});
    if (s.markers) doc.circle({x + pad + swatch / 2, cy}, 3.2, s.color, {"white", 1, ""});
    doc.text({x + pad * 2 + swatch, cy + 4.5}, s.name, 12.5);
  }
}

}  // namespace kiln::plot
