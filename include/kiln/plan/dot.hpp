#pragma once
// A plan as a Graphviz DOT graph: each kernel is a cluster named as the plan printer names it
// (kiln::kernel_name), holding the nodes it computes; edges run from each value to the nodes that read it.
//   - leaves (inputs, parameters, optimizer state) are boxes outside every cluster;
//   - a value a kernel recomputes instead of loading (fusion) is drawn inside each kernel that recomputes it;
//   - transposes are not nodes (a contraction reads its operand through strides): the edge is labelled ᵀ;
//   - constants and hyperparameters appear in the label of the node that uses them;
//   - fill colour: green for the forward pass (what the loss depends on), rose for the backward pass and
//     optimizer update; a node that writes a parameter or state in place says "→ name" and has a bold border.
// Render: dot -Tsvg step.dot -o step.svg
#include <kiln/plan/kernel_view.hpp>
#include <kiln/plan/print.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace kiln {

namespace dot_detail {

inline std::string dot_string(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '\n') {
      out += "\\n";  // DOT's line break
      continue;
    }
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

// The DOT id of node `a` as read from kernel k (body `v`): a private copy when k recomputes it, else its one node.
inline std::string id_in(const plan& p, const kernel_view& v, int k, int a) {
  if (!p.materialized[a] && v.has(a)) return "k" + std::to_string(k) + "n" + std::to_string(a);
  return "n" + std::to_string(a);
}

inline const char* leaf_fill(leaf_kind k) {
  switch (k) {
    case leaf_kind::input:
    case leaf_kind::labels: return "#d6e6f5";
    case leaf_kind::param: return "#fff0b3";
    case leaf_kind::state: return "#e4e4e4";
  }
  return "white";
}

}  // namespace dot_detail

inline std::string to_dot(const plan& p, std::string_view title = "") {
  using namespace dot_detail;
  const graph& g = p.g;
  const std::vector<bool> forward = forward_nodes(g);
  std::string out = "digraph kiln_plan {\n"
                    "  rankdir=TB; newrank=true; nodesep=0.25; ranksep=0.35;\n"
                    "  node [shape=box, style=\"rounded,filled\", fontname=\"Helvetica\", fontsize=10, margin=\"0.08,0.03\"];\n"
                    "  edge [color=\"#555555\", arrowsize=0.6, fontname=\"Helvetica\", fontsize=9];\n";
  std::string caption = std::string(title.empty() ? "plan" : title) + " (" +
                        (p.mode == fusion::fused ? "fused" : "unfused") + "): " + std::to_string(p.num_kernels) +
                        " kernels, " + std::to_string(g.size) + " nodes\n"
                        "clusters = kernels (dashed: recomputed inside the kernel); green = forward, rose = backward + "
                        "update; → name = written in place";
  out += "  labelloc=t; fontname=\"Helvetica\"; fontsize=13; label=" + dot_string(caption) + ";\n";

  // leaves
  for (int i = 0; i < g.size; ++i) {
    const node& n = g.nodes[i];
    if (ops::class_of(n.kind) != op_class::leaf) continue;
    const leaf_info& l = g.leaves[n.leaf];
    out += "  n" + std::to_string(i) + " [shape=box, style=filled, fillcolor=\"" + leaf_fill(l.kind) + "\", label=" +
           dot_string(std::string(l.name.view()) + "\n" + dims_text(n.shape)) + "];\n";
  }

  auto node_line = [&](const kernel_view& v, int k, int i) {
    const node& n = g.nodes[i];
    std::string label = node_text(p, i);
    const std::size_t shape_at = label.rfind(" [");
    if (shape_at != std::string::npos) label[shape_at] = '\n';
    if (p.assign[i] >= 0) label += "\n→ " + std::string(g.leaves[p.assign[i]].name.view());
    else if (p.is_output[i]) label += "\n(output " + std::to_string(p.is_output[i] - 1) + ")";
    std::string attrs = "fillcolor=\"" + std::string(forward[static_cast<std::size_t>(i)] ? "#d5ecd4" : "#f6d6d6") + "\"";
    if (p.assign[i] >= 0 || p.is_output[i]) attrs += ", penwidth=2";
    if (!p.materialized[i]) attrs += ", style=\"rounded,filled,dashed\"";
    (void)n;
    return "    " + id_in(p, v, k, i) + " [" + attrs + ", label=" + dot_string(label) + "];\n";
  };

  std::string edges;
  for (int k = 0; k < p.num_kernels; ++k) {
    const kernel& kr = p.kernels[k];
    const char* color = kr.kind == kernel_kind::contraction ? "#3b6ea8" : kr.kind == kernel_kind::reduction ? "#8a5fb5" : "#8c8c8c";
    out += "  subgraph cluster_k" + std::to_string(k) + " {\n    style=\"rounded\"; color=\"" + color +
           "\"; penwidth=1.5; fontsize=11; fontcolor=\"" + color + "\"; label=" +
           dot_string("k" + std::to_string(k) + " " + kernel_name(p, k) + " " + dims_text(kr.domain)) + ";\n";
    const kernel_view v = view_of(p, kr);
    std::vector<int> drawn;
    if (kr.kind != kernel_kind::elementwise) drawn.push_back(kr.anchor);
    for (int i : v.nodes)
      if (ops::class_of(g.nodes[i].kind) != op_class::immediate) drawn.push_back(i);
    for (int i : drawn) {
      out += node_line(v, k, i);
      for (int s = 0; s < 3 && g.nodes[i].in[s] >= 0; ++s) {
        int a = g.nodes[i].in[s];
        std::string label;
        while (ops::class_of(g.nodes[a].kind) == op_class::layout) {  // read through strides
          a = g.nodes[a].in[0];
          label = label.empty() ? "ᵀ" : "";
        }
        if (ops::class_of(g.nodes[a].kind) == op_class::immediate) continue;
        edges += "  " + id_in(p, v, k, a) + " -> " + id_in(p, v, k, i) + (label.empty() ? "" : " [label=" + dot_string(label) + "]") + ";\n";
      }
    }
    out += "  }\n";
  }
  return out + edges + "}\n";
}

}  // namespace kiln
