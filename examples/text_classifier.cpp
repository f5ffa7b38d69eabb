// The notes' text classifier (bag-of-words input, a PReLU hidden layer, softmax cross-entropy) on a real corpus:
// the one-line descriptions of Debian's packages, labelled with their Section, from the package lists every
// Debian machine has (`apt-cache dumpavail`, or a Packages file given with --packages).
//
// A description becomes a vector with one slot per vocabulary word: 1 if the word occurs in it, else 0 (word
// order is lost, a "bag" of words). The vocabulary is the 1024 words found in the most training descriptions;
// words outside it are ignored. Only the description is read, never the package's name or tags, which would
// give the section away (python3-*, lib*-perl, "implemented-in::python"). The classes are the 20 largest
// sections; packages in the others are left out, and so is every description already seen (identical
// descriptions across the split would be memorized, not classified). A package is in the test set when a hash
// of its name says so (one in five), so the split does not depend on the order of the lists.
// The network 1024 → 64 PReLU → 20 learns which words point to which section; PReLU is max(0, x) + a·min(0, x)
// with a learned slope a (PyTorch's nn.PReLU, initialized to 0.25).
//
//   text_classifier [--packages FILE] [--epochs N]     (prints "test accuracy: X" and the majority baseline)
#include <kiln/kiln.hpp>
#include <kiln/core/hash.hpp>
#include <kiln/cpu/train_step.hpp>
#include <kiln/cpu/trainer.hpp>
#include <kiln/io/atomic_file.hpp>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace {
constexpr int vocabulary_size = 1024;  // the input width is static
constexpr int section_count = 20;
constexpr auto net = kiln::nn::sequential(kiln::dense<64>{}, kiln::prelu_l, kiln::dense<section_count>{});
constexpr auto words = kiln::input<vocabulary_size>("x");
struct section_loss {
  constexpr auto operator()() const { return kiln::cross_entropy(net(words), kiln::labels<section_count>("y")); }
};
struct section_logits {
  constexpr auto operator()() const { return net(words); }
};

struct package {
  std::string name, section, description;
};

// Debian's control-file format: stanzas of "Field: value" lines (a line starting with a space continues the
// field above), separated by blank lines. Returns Package, Section (its component prefix "contrib/" or
// "non-free/" removed) and the first line of Description of every stanza that has all three.
std::vector<package> parse_packages(std::string_view text) {
  std::vector<package> out;
  package p;
  auto finish = [&] {
    if (!p.name.empty() && !p.section.empty() && !p.description.empty()) out.push_back(p);
    p = {};
  };
  std::size_t begin = 0;
  while (begin <= text.size()) {
    std::size_t end = text.find('\n', begin);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view line = text.substr(begin, end - begin);
    begin = end + 1;
    if (line.empty()) {
      finish();
      continue;
    }
    if (line[0] == ' ' || line[0] == '\t') continue;  // a continuation: the long description, wrapped fields
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    const std::string_view field = line.substr(0, colon);
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    if (field == "Package") p.name = value;
    else if (field == "Section") p.section = value.substr(value.rfind('/') == std::string_view::npos ? 0 : value.rfind('/') + 1);
    else if (field == "Description") p.description = value;
  }
  finish();
  return out;
}

std::string run_command(const std::string& command) {
  std::FILE* pipe = ::popen(command.c_str(), "r");
  if (!pipe) throw kiln::io_error("cannot run '" + command + "'");
  std::string out;
  char buf[1 << 16];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, pipe)) > 0;) out.append(buf, n);
  const int status = ::pclose(pipe);
  if (status != 0) throw kiln::io_error("'" + command + "' failed (status " + std::to_string(status) + ")");
  return out;
}

std::vector<std::string> tokens(const std::string& text) {
  std::vector<std::string> out;
  std::string w;
  for (char c : text + " ") {
    if (std::isalpha(static_cast<unsigned char>(c))) {
      w += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    } else if (!w.empty()) {
      if (w.size() > 1) out.push_back(w);
      w.clear();
    }
  }
  return out;
}

struct example {
  int section;
  std::string text;
};

struct corpus {
  std::vector<std::string> sections;  // the classes, largest first
  std::vector<example> train, test;
  std::map<std::string, int> vocabulary;
  std::size_t packages = 0, kept = 0;
};

corpus build_corpus(const std::vector<package>& packages) {
  corpus c;
  c.packages = packages.size();
  // one entry per package name and per description
  std::set<std::string> names, descriptions;
  std::vector<const package*> unique;
  for (const package& p : packages)
    if (names.insert(p.name).second && descriptions.insert(p.description).second) unique.push_back(&p);
  std::map<std::string, int> count;
  for (const package* p : unique) ++count[p->section];
  std::vector<std::pair<int, std::string>> by_size;
  for (const auto& [s, n] : count) by_size.emplace_back(-n, s);
  std::sort(by_size.begin(), by_size.end());
  if (by_size.size() < static_cast<std::size_t>(section_count))
    throw kiln::error("the package lists have " + std::to_string(by_size.size()) + " sections, fewer than the " +
                      std::to_string(section_count) + " classes of the model");
  std::map<std::string, int> class_of;
  for (int i = 0; i < section_count; ++i) {
    c.sections.push_back(by_size[static_cast<std::size_t>(i)].second);
    class_of[c.sections.back()] = i;
  }
  for (const package* p : unique) {
    const auto it = class_of.find(p->section);
    if (it == class_of.end()) continue;
    (kiln::fnv1a64(p->name) % 5 == 0 ? c.test : c.train).push_back({it->second, p->description});
  }
  c.kept = c.train.size() + c.test.size();
  // the vocabulary: the words in the most training descriptions (ties by the word, so the choice is stable)
  std::map<std::string, int> document_frequency;
  for (const example& e : c.train) {
    auto ws = tokens(e.text);
    std::sort(ws.begin(), ws.end());
    ws.erase(std::unique(ws.begin(), ws.end()), ws.end());
    for (const auto& w : ws) ++document_frequency[w];
  }
  std::vector<std::pair<int, std::string>> ranked;
  for (const auto& [w, n] : document_frequency) ranked.emplace_back(-n, w);
  std::sort(ranked.begin(), ranked.end());
  for (std::size_t i = 0; i < ranked.size() && i < static_cast<std::size_t>(vocabulary_size); ++i)
    c.vocabulary[ranked[i].second] = static_cast<int>(i);
  return c;
}

std::vector<float> bag_of_words(const std::string& text, const std::map<std::string, int>& vocabulary) {
  std::vector<float> v(vocabulary_size, 0.0f);
  for (const std::string& w : tokens(text))
    if (auto it = vocabulary.find(w); it != vocabulary.end()) v[static_cast<std::size_t>(it->second)] = 1.0f;
  return v;
}

kiln::train::table to_table(const std::vector<example>& examples, const std::map<std::string, int>& vocabulary) {
  std::vector<float> x;
  std::vector<std::int32_t> y;
  x.reserve(examples.size() * vocabulary_size);
  for (const example& e : examples) {
    const auto v = bag_of_words(e.text, vocabulary);
    x.insert(x.end(), v.begin(), v.end());
    y.push_back(e.section);
  }
  kiln::train::table t;
  t.add_features("x", std::move(x), vocabulary_size).add_labels("y", y);
  return t;
}
}  // namespace

int main(int argc, char** argv) {
  std::string packages_file;
  int epochs = 3;  // the test loss is lowest after 2–3 epochs; later ones overfit the 39 k descriptions
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--packages") packages_file = argv[i + 1];
    else if (a == "--epochs") epochs = std::max(1, std::atoi(argv[i + 1]));
    else {
      std::fprintf(stderr, "usage: text_classifier [--packages FILE] [--epochs N]\n");
      return 2;
    }
  }
  try {
    const auto start = std::chrono::steady_clock::now();
    const std::string source = packages_file.empty() ? "apt-cache dumpavail" : packages_file;
    std::string text;
    if (!packages_file.empty()) {
      text = kiln::io::read_file(packages_file);
    } else {
      try {
        text = run_command("apt-cache dumpavail 2>/dev/null");
      } catch (const kiln::error& e) {  // not a Debian machine: nothing to learn from (ctest reports it skipped)
        throw kiln::error(std::string("skipped: no package lists to read: ") + e.what() + "; give a Packages file with --packages");
      }
    }
    const std::vector<package> packages = parse_packages(text);
    if (packages.empty() && packages_file.empty())
      throw kiln::error("skipped: `apt-cache dumpavail` lists no package: the package lists are empty (run apt-get update)");
    if (packages.empty()) throw kiln::format_error("'" + packages_file + "' holds no stanza with Package, Section and Description");
    const corpus c = build_corpus(packages);
    std::printf("corpus (%s): %zu packages; %zu distinct descriptions in the %d largest sections: %zu for training, "
                "%zu for testing; vocabulary of %zu words\n",
                source.c_str(), c.packages, c.kept, section_count, c.train.size(), c.test.size(), c.vocabulary.size());
    std::vector<std::size_t> test_count(section_count, 0);
    for (const example& e : c.test) ++test_count[static_cast<std::size_t>(e.section)];
    std::printf("sections:");
    for (int s = 0; s < section_count; ++s) std::printf(" %s", c.sections[static_cast<std::size_t>(s)].c_str());
    std::printf("\n");

    kiln::train::options opt;
    opt.epochs = epochs;
    opt.batch_size = 64;
    opt.seed = 1;
    opt.progress = kiln::train::progress_style::quiet;
    kiln::train::trainer<section_loss, kiln::adam, section_logits> trainer(kiln::adam{.lr = 2e-3}, opt);
    const kiln::train::table test_table = to_table(c.test, c.vocabulary);
    trainer.fit(to_table(c.train, c.vocabulary), test_table);
    std::printf("%5s %12s %10s %14s %9s\n", "epoch", "train loss", "test loss", "test accuracy", "seconds");
    for (const auto& r : trainer.history())
      std::printf("%5d %12.4f %10.4f %14.4f %9.2f\n", r.epoch, r.train_loss, r.val_loss, r.val_accuracy, r.seconds);
    std::printf("learned PReLU slope a = %.3f (initialized to 0.25)\n", trainer.step().param("prelu1.weight")[0]);

    // accuracy per section, and the baseline that always answers the largest section of the training set
    kiln::cpu::function<section_logits> classify(trainer.step());
    std::vector<float> logits(static_cast<std::size_t>(section_count));
    auto predict = [&](const std::string& description) {
      classify.run(1, {{"x", bag_of_words(description, c.vocabulary)}}, logits);
      return static_cast<int>(std::max_element(logits.begin(), logits.end()) - logits.begin());
    };
    std::vector<std::size_t> right(section_count, 0);
    for (const example& e : c.test) right[static_cast<std::size_t>(e.section)] += predict(e.text) == e.section;
    std::size_t correct = 0;
    std::printf("\n%-12s %6s %9s\n", "section", "tests", "accuracy");
    for (int s = 0; s < section_count; ++s) {
      const auto i = static_cast<std::size_t>(s);
      correct += right[i];
      std::printf("%-12s %6zu %9.3f\n", c.sections[i].c_str(), test_count[i], test_count[i] ? double(right[i]) / double(test_count[i]) : 0.0);
    }
    std::vector<std::size_t> train_count(section_count, 0);
    for (const example& e : c.train) ++train_count[static_cast<std::size_t>(e.section)];
    const auto majority = static_cast<std::size_t>(std::max_element(train_count.begin(), train_count.end()) - train_count.begin());
    const double accuracy = double(correct) / double(c.test.size());
    const double baseline = double(test_count[majority]) / double(c.test.size());
    std::printf("\nnew descriptions:\n");
    for (const char* d : {"Python bindings for the GTK toolkit", "command-line tool to resize photos",
                          "documentation for the foo library", "fast web server written in Rust", "Haskell parser combinators"})
      std::printf("  %-10s %s\n", c.sections[static_cast<std::size_t>(predict(d))].c_str(), d);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("\ntest accuracy: %.4f (majority-class baseline, always '%s': %.4f; %d sections)\nwall time: %.1f s\n", accuracy,
                c.sections[majority].c_str(), baseline, section_count, seconds);
    return accuracy > 2 * baseline ? 0 : 1;
  } catch (const kiln::error& e) {
    std::fprintf(stderr, "text_classifier: %s\n", e.what());
    return 1;
  }
}
