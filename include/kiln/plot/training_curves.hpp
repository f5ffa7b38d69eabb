#pragma once
// The picture of a training run: loss per epoch (training and validation) beside validation accuracy.
#include <kiln/plot/chart.hpp>

#include <cmath>
#include <string>
#include <vector>

namespace kiln::plot {

struct training_curves {
  std::vector<double> epoch, train_loss, val_loss, val_accuracy;  // one entry per epoch; NaN where not measured
};

inline svg render_training_curves(const training_curves& c, const std::string& title = "") {
  const double panel_w = 480, panel_h = 380, top = title.empty() ? 0 : 30;
  svg doc(2 * panel_w, panel_h + top);
  if (!title.empty()) doc.text({panel_w, 22}, title, 16, svg::anchor::middle, 0, true);
  const double last = c.epoch.empty() ? 1 : c.epoch.back();
  const range epochs{1, std::max(last, 2.0)};

  const std::vector<series> losses = {{"training loss", c.epoch, c.train_loss, "#1f77b4"},
                                      {"validation loss", c.epoch, c.val_loss, "#d62728", "7 4"}};
  const frame lf = draw_axes(doc, {0, top, panel_w, panel_h},
                             {"Loss per epoch", "epoch", "loss (mean per sample)", epochs,
                              nice_range(data_range(losses, true)), true});
  for (const series& s : losses) draw_series(doc, lf, s);
  draw_legend(doc, lf, losses);

  const std::vector<series> accuracy = {{"validation accuracy", c.epoch, c.val_accuracy, "#2ca02c"}};
  bool any = false;
  for (double v : c.val_accuracy) any = any || std::isfinite(v);
  range ay = nice_range(data_range(accuracy, true));
  ay = {std::max(ay.lo, 0.0), std::min(ay.hi, 1.0)};
  if (!(ay.hi > ay.lo)) ay = {0, 1};
  const frame af = draw_axes(doc, {panel_w, top, panel_w, panel_h},
                             {"Validation accuracy per epoch", "epoch", "accuracy (fraction correct)", epochs, ay, true});
  if (any) {
    draw_series(doc, af, accuracy[0]);
    draw_legend(doc, af, accuracy, corner::bottom_right);
  } else {
    doc.text({af.area.x + af.area.width / 2, af.area.y + af.area.height / 2}, "no accuracy measured (no prediction model)",
             13, svg::anchor::middle, 0, false, "#888");
  }
  return doc;
}

}  // namespace kiln::plot
