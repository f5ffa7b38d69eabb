// The SVG writer and charts: tick choice, labels, escaping, contour geometry, the training-curves picture
// (rendered to PNG with rsvg-convert when it is installed, so that a person can look at it).
#include "train_test_util.hpp"

#include <kiln/plot/contour.hpp>
#include <kiln/plot/training_curves.hpp>

#include <catch2/catch.hpp>

#include <cmath>
#include <string>

using namespace kiln::plot;

TEST_CASE("nice ticks are 1, 2 or 5 times a power of ten and cover the range") {
  for (const range r : {range{0, 1}, range{0.2731, 0.9112}, range{-3.5, 12.25}, range{1, 10}, range{0.84, 0.89},
                        range{1e-5, 7e-5}, range{-1200, 45000}}) {
    INFO("range [" << r.lo << ", " << r.hi << "]");
    const ticks t = nice_ticks(r, 5);
    REQUIRE(t.at.size() >= 2);
    const double mantissa = t.step / std::pow(10.0, std::floor(std::log10(t.step) + 1e-12));
    CHECK((std::abs(mantissa - 1) < 1e-9 || std::abs(mantissa - 2) < 1e-9 || std::abs(mantissa - 5) < 1e-9));
    for (double v : t.at) {
      CHECK(v >= r.lo - t.step * 1e-6);
      CHECK(v <= r.hi + t.step * 1e-6);
      CHECK(std::abs(v / t.step - std::round(v / t.step)) < 1e-6);  // multiples of the step
    }
    CHECK(t.at.front() - r.lo < t.step + 1e-12);  // no whole step missing at either end
    CHECK(r.hi - t.at.back() < t.step + 1e-12);
    const range n = nice_range(r, 5);
    CHECK(n.lo <= r.lo);
    CHECK(n.hi >= r.hi);
  }
  CHECK(nice_ticks({0, 10}, 5).step == 2);
  CHECK(nice_ticks({0, 1}, 4).step == 0.5);
  CHECK(nice_range({3, 3}).lo < 3);  // a degenerate range is widened
}

TEST_CASE("tick labels carry the decimals the step needs") {
  CHECK(tick_label(0.5, 0.5) == "0.5");
  CHECK(tick_label(0.85, 0.05) == "0.85");
  CHECK(tick_label(2, 1) == "2");
  CHECK(tick_label(-1e-17, 0.1) == "0.0");  // no "-0.0"
  CHECK(tick_label(40000, 20000) == "40000");
}

TEST_CASE("svg text is escaped and coordinates are compact") {
  svg doc(100, 50);
  doc.text({1, 2}, "a < b & \"c\"");
  doc.line({0.5, 1.0}, {2.126, -0.001}, {"#123", 1, ""});
  const std::string s = doc.str();
  CHECK(s.find("a &lt; b &amp; &quot;c&quot;") != std::string::npos);
  CHECK(s.find("x1=\"0.5\" y1=\"1\" x2=\"2.13\" y2=\"0\"") != std::string::npos);
  CHECK(s.rfind("<svg", 0) == 0);
  CHECK(s.find("</svg>") != std::string::npos);
}

TEST_CASE("contour segments of x² + y² = 1 lie on the unit circle and go all around it") {
  grid g;
  for (int i = 0; i <= 40; ++i) g.xs.push_back(-2 + 0.1 * i);
  g.ys = g.xs;
  for (double y : g.ys)
    for (double x : g.xs) g.values.push_back(x * x + y * y);
  const auto segments = contour_segments(g, 1.0);
  REQUIRE(segments.size() > 40);
  double length = 0;
  for (const auto& [a, b] : segments) {
    // linear interpolation on a 0.1 grid: within a few thousandths of the circle
    CHECK(std::abs(std::hypot(a.x, a.y) - 1) < 0.01);
    CHECK(std::abs(std::hypot(b.x, b.y) - 1) < 0.01);
    length += std::hypot(b.x - a.x, b.y - a.y);
  }
  CHECK(length == Approx(2 * M_PI).epsilon(0.01));
}

TEST_CASE("a saddle cell is split according to its centre value") {
  // corners (0,0)=1 (1,0)=0 (1,1)=1 (0,1)=0 with the level 0.5: all four edges are crossed
  const grid g{{0, 1}, {0, 1}, {1, 0, 0, 1}};  // row j=0: (0,0)=1 (1,0)=0; row j=1: (0,1)=0 (1,1)=1
  const auto segments = contour_segments(g, 0.5);
  REQUIRE(segments.size() == 2);
  // the centre (0.5) is "above": the curve cuts off the two low corners (1,0) and (0,1)
  for (const auto& [a, b] : segments) {
    const point mid{(a.x + b.x) / 2, (a.y + b.y) / 2};
    const bool near_low_corner = std::hypot(mid.x - 1, mid.y) < 0.5 || std::hypot(mid.x, mid.y - 1) < 0.5;
    CHECK(near_low_corner);
  }
}

TEST_CASE("training curves: two panels with legends, NaN breaks the line, renders to PNG") {
  training_curves c;
  for (int e = 1; e <= 10; ++e) {
    c.epoch.push_back(e);
    c.train_loss.push_back(0.9 / std::sqrt(e));
    c.val_loss.push_back(e == 4 ? NAN : 0.95 / std::sqrt(e) + 0.01 * e);
    c.val_accuracy.push_back(0.7 + 0.018 * e);
  }
  const svg doc = render_training_curves(c, "test run");
  const std::string s = doc.str();
  for (const char* text : {"training loss", "validation loss", "validation accuracy", "Loss per epoch", "epoch", "test run"})
    CHECK(s.find(text) != std::string::npos);
  // train loss: one polyline; validation loss: two pieces around the NaN; accuracy: one (legends use lines)
  std::size_t polylines = 0;
  for (std::size_t at = s.find("<polyline"); at != std::string::npos; at = s.find("<polyline", at + 1)) ++polylines;
  CHECK(polylines == 4);
  CHECK(s.find("nan") == std::string::npos);

  const std::string out = kiln_test::artifact_dir() + "/curves_test.svg";
  doc.save(out);
  if (!kiln_test::have("rsvg-convert")) {
    WARN("skipped: rsvg-convert is not installed (apt-get install librsvg2-bin); the SVG was not rendered");
    return;
  }
  const std::string png = kiln_test::artifact_dir() + "/curves_test.png";
  REQUIRE(kiln_test::run("rsvg-convert -o '" + png + "' '" + out + "'"));
  CHECK(kiln_test::is_png(png));
}
