// The plan as a Graphviz graph: one cluster per kernel named as the plan printer names it, every edge between
// declared nodes, every computed node drawn; rendered with dot when Graphviz is installed (the PNG is kept in
// <build>/test-artifacts/train for a person to look at).
#include "train_test_util.hpp"

#include <kiln/kiln.hpp>
#include <kiln/plan/dot.hpp>
#include <kiln/train/step_graph.hpp>

#include <catch2/catch.hpp>

#include <regex>
#include <set>
#include <string>

namespace {
struct small_classifier {
  constexpr auto operator()() const {
    auto net = kiln::nn::sequential(kiln::dense<8>{}, kiln::relu, kiln::dense<3>{});
    return kiln::cross_entropy(net(kiln::input<4>("x")), kiln::labels<3>("y"));
  }
};
struct step_plans {
  using graph_holder = kiln::step_graph<small_classifier, kiln::adam>;
  static constexpr const kiln::graph& g = graph_holder::value;
  static constexpr const kiln::plan& fused = kiln::frozen_plan<graph_holder, kiln::fusion::fused>::value;
  static constexpr const kiln::plan& unfused = kiln::frozen_plan<graph_holder, kiln::fusion::unfused>::value;
};

std::size_t count(const std::string& s, const std::string& what) {
  std::size_t n = 0;
  for (std::size_t at = s.find(what); at != std::string::npos; at = s.find(what, at + 1)) ++n;
  return n;
}

// Node ids declared (`  id [`) and used by edges (`a -> b`).
void check_structure(const kiln::plan& p, const std::string& dot) {
  CHECK(dot.rfind("digraph", 0) == 0);
  CHECK(count(dot, "subgraph cluster_k") == static_cast<std::size_t>(kiln::kernel_count(p)));
  for (int k = 0; k < p.num_kernels; ++k) {
    INFO("kernel " << k);
    CHECK(dot.find("\"k" + std::to_string(k) + " " + kiln::kernel_name(p, k) + " ") != std::string::npos);
  }
  std::set<std::string> declared, used;
  const std::regex declaration(R"(^\s+(k?\d*n\d+) \[)"), edge(R"(^\s+(k?\d*n\d+) -> (k?\d*n\d+))");
  std::size_t begin = 0;
  while (begin < dot.size()) {
    const std::size_t end = dot.find('\n', begin);
    const std::string line = dot.substr(begin, end - begin);
    begin = end == std::string::npos ? dot.size() : end + 1;
    std::smatch m;
    if (std::regex_search(line, m, edge)) {
      used.insert(m[1]);
      used.insert(m[2]);
    } else if (std::regex_search(line, m, declaration)) {
      CHECK(declared.insert(m[1]).second);  // each node declared once
    }
  }
  for (const std::string& id : used) {
    INFO("edge endpoint " << id);
    CHECK(declared.count(id) == 1);
  }
  // every materialized computed node appears under its own id; every parameter is drawn
  for (int i = 0; i < p.g.size; ++i) {
    const auto cls = kiln::ops::class_of(p.g.nodes[i].kind);
    if (p.materialized[i] && cls != kiln::op_class::immediate) CHECK(declared.count("n" + std::to_string(i)) == 1);
  }
  for (const char* name : {"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias", "fc1.weight.exp_avg"})
    CHECK(dot.find(std::string("label=\"") + name + "\\n") != std::string::npos);
  CHECK(dot.find("→ fc1.weight") != std::string::npos);  // the in-place update of a parameter
  CHECK(dot.find("label=\"ᵀ\"") != std::string::npos);   // a contraction reads a transposed operand
}
}  // namespace

TEST_CASE("dot: fused and unfused plans as clusters of kernels") {
  const std::string fused = kiln::to_dot(step_plans::fused, "small classifier");
  const std::string unfused = kiln::to_dot(step_plans::unfused, "small classifier");
  SECTION("fused") { check_structure(step_plans::fused, fused); }
  SECTION("unfused") { check_structure(step_plans::unfused, unfused); }
  CHECK(kiln::kernel_count(step_plans::fused) < kiln::kernel_count(step_plans::unfused));
  // fusion recomputes cheap values inside the kernels that read them: drawn dashed, with a per-kernel id
  CHECK(fused.find("style=\"rounded,filled,dashed\"") != std::string::npos);
  CHECK(unfused.find("style=\"rounded,filled,dashed\"") == std::string::npos);
}

TEST_CASE("dot: Graphviz renders the fused step") {
  const std::string dir = kiln_test::artifact_dir();
  const std::string dot_file = dir + "/small_classifier_step.dot";
  kiln::io::write_file_atomic(dot_file, kiln::to_dot(step_plans::fused, "small classifier, Adam"));
  if (!kiln_test::have("dot")) {
    WARN("skipped: Graphviz 'dot' is not installed (apt-get install graphviz); wrote " << dot_file << " only");
    return;
  }
  const std::string png = dir + "/small_classifier_step.png";
  REQUIRE(kiln_test::run("dot -Tpng -o '" + png + "' '" + dot_file + "' 2> '" + dir + "/dot_stderr.txt'"));
  CHECK(kiln_test::is_png(png));
  CHECK(kiln::io::read_file(dir + "/dot_stderr.txt").empty());  // no warnings from dot either
}
