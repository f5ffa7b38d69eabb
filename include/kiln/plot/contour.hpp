#pragma once
// Level sets of a function sampled on a grid (marching squares), drawn as paths in a chart frame.
#include <kiln/plot/chart.hpp>

#include <utility>
#include <vector>

namespace kiln::plot {

// A function sampled at (xs[i], ys[j]): value(i, j) = values[j * xs.size() + i].
struct grid {
  std::vector<double> xs, ys, values;
  double value(std::size_t i, std::size_t j) const { return values[j * xs.size() + i]; }
};

using segment = std::pair<point, point>;

// The pieces of the curve f = level, in data coordinates. Each grid cell whose corners lie on both sides of
// the level contributes the line between the points where f crosses the level on its edges (found by linear
// interpolation along the edge). In a saddle cell (all four edges crossed) the cell's centre value decides
// which corners the curve cuts off: those on the other side of the level from the centre.
inline std::vector<segment> contour_segments(const grid& g, double level) {
  std::vector<segment> out;
  if (g.xs.size() < 2 || g.ys.size() < 2 || g.values.size() != g.xs.size() * g.ys.size()) return out;
  for (std::size_t j = 0; j + 1 < g.ys.size(); ++j)
    for (std::size_t i = 0; i + 1 < g.xs.size(); ++i) {
      // corners counter-clockwise from bottom-left: (i,j) (i+1,j) (i+1,j+1) (i,j+1)
      const double v[4] = {g.value(i, j), g.value(i + 1, j), g.value(i + 1, j + 1), g.value(i, j + 1)};
      const point c[4] = {{g.xs[i], g.ys[j]}, {g.xs[i + 1], g.ys[j]}, {g.xs[i + 1], g.ys[j + 1]}, {g.xs[i], g.ys[j + 1]}};
      bool above[4];
      for (int k = 0; k < 4; ++k) above[k] = v[k] >= level;
      // edge e joins corner e and corner e+1
      point cross[4];
      bool crossed[4];
      for (int e = 0; e < 4; ++e) {
        const int a = e, b = (e + 1) % 4;
        crossed[e] = above[a] != above[b];
        if (crossed[e]) {
          const double t = (level - v[a]) / (v[b] - v[a]);
          cross[e] = {c[a].x + t * (c[b].x - c[a].x), c[a].y + t * (c[b].y - c[a].y)};
        }
      }
      int n = 0, edges[4];
      for (int e = 0; e < 4; ++e)
        if (crossed[e]) edges[n++] = e;
      if (n == 2) {
        out.push_back({cross[edges[0]], cross[edges[1]]});
      } else if (n == 4) {
        const bool centre_above = (v[0] + v[1] + v[2] + v[3]) / 4 >= level;
        for (int k = 0; k < 4; ++k)  // corner k touches edges k-1 and k
          if (above[k] != centre_above) out.push_back({cross[(k + 3) % 4], cross[k]});
      }
    }
  return out;
}

// Draws the level set f = level inside the frame (clipped to it).
inline void draw_contour(svg& doc, const frame& f, const grid& g, double level, const stroke& s) {
  std::string d;
  for (const segment& seg : contour_segments(g, level)) {
    const point a = f.at(seg.first.x, seg.first.y), b = f.at(seg.second.x, seg.second.y);
    d += "M" + coord(a.x) + " " + coord(a.y) + "L" + coord(b.x) + " " + coord(b.y);
  }
  if (d.empty()) return;
  doc.begin_clip(f.area.x, f.area.y, f.area.width, f.area.height);
  doc.path(d, s);
  doc.end_clip();
}

}  // namespace kiln::plot
