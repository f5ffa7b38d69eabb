#pragma once
// One kernel as every renderer and printer reads it (the CPU's rendered C++, the CUDA renderer, the DOT
// writer): the nodes it evaluates per element in topological order, and the roots it stores once the whole
// body is evaluated (a root assigned in place to a leaf may be read by another root's body, which must see
// the old value). Anything a body node reads that is not in `nodes` is a load.
#include <kiln/plan/plan.hpp>

#include <vector>

namespace kiln {

struct kernel_view {
  std::vector<int> nodes;
  std::vector<int> roots;
  std::vector<char> member;  // member[id] != 0: node id is evaluated by this body (sized to the graph)
  bool has(int id) const { return id >= 0 && id < static_cast<int>(member.size()) && member[static_cast<std::size_t>(id)]; }
};

// The whole body of plan kernel k and every node it stores.
inline kernel_view view_of(const plan& p, const kernel& k) {
  kernel_view v;
  v.member.assign(static_cast<std::size_t>(p.g.size), 0);
  for (int i = k.body_begin; i < k.body_end; ++i) {
    v.nodes.push_back(p.body[i]);
    v.member[static_cast<std::size_t>(p.body[i])] = 1;
  }
  for (int s = k.store_begin; s < k.store_end; ++s) v.roots.push_back(p.stores[s]);
  return v;
}

// The part of kernel k's body that `roots` depend on, in the kernel's order (a kernel split over launches).
inline kernel_view view_for_roots(const plan& p, const kernel& k, const std::vector<int>& roots) {
  const kernel_view all = view_of(p, k);
  kernel_view v;
  v.member.assign(static_cast<std::size_t>(p.g.size), 0);
  std::vector<int> stack(roots.begin(), roots.end());
  while (!stack.empty()) {
    const int id = stack.back();
    stack.pop_back();
    if (!all.has(id) || v.has(id)) continue;
    v.member[static_cast<std::size_t>(id)] = 1;
    const node& n = p.g.nodes[id];
    for (int a = 0; a < ops::arity_of(n.kind); ++a) stack.push_back(n.in[a]);
  }
  for (int id : all.nodes)
    if (v.has(id)) v.nodes.push_back(id);
  v.roots = roots;
  return v;
}

}  // namespace kiln
