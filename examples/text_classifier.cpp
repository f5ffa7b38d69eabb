// A small text classifier: bag-of-words input, a PReLU hidden layer, softmax cross-entropy.
//
// Each sentence becomes a vector with one slot per vocabulary word (the words of the training sentences):
// 1 if the word occurs in the sentence, else 0. Word order is lost ("bag" of words) and words never seen in
// training are ignored. The network 256 → 16 PReLU → 3 learns which words point to which topic; PReLU is
// max(0, x) + a·min(0, x) with a learned slope a (PyTorch's nn.PReLU, initialized to 0.25).
// The corpus ships in examples/data/sentences.tsv: 60 sentences about weather, food and sport; every fourth
// sentence of each topic is held out for testing.
//
//   text_classifier [--data FILE]
#include <kiln/kiln.hpp>
#include <kiln/cpu/train_step.hpp>
#include <kiln/io/atomic_file.hpp>
#include <kiln/cpu/trainer.hpp>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace {
constexpr int vocabulary_capacity = 256;  // the input width is static: the vocabulary must fit
constexpr auto net = kiln::nn::sequential(kiln::dense<16>{}, kiln::prelu_l, kiln::dense<3>{});
constexpr auto words = kiln::input<vocabulary_capacity>("x");
struct topic_loss {
  constexpr auto operator()() const { return kiln::cross_entropy(net(words), kiln::labels<3>("y")); }
};
struct topic_logits {
  constexpr auto operator()() const { return net(words); }
};
const std::vector<std::string> topics = {"weather", "food", "sport"};

struct sentence {
  int topic;
  std::string text;
};

std::vector<std::string> tokens(const std::string& text) {
  std::vector<std::string> out;
  std::string w;
  for (char c : text + " ") {
    if (std::isalpha(static_cast<unsigned char>(c))) {
      w += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    } else if (!w.empty()) {
      out.push_back(w);
      w.clear();
    }
  }
  return out;
}

std::vector<sentence> read_corpus(const std::string& path) {
  std::vector<sentence> out;
  const std::string text = kiln::io::read_file(path);
  std::size_t line_no = 0, begin = 0;
  while (begin < text.size()) {
    std::size_t end = text.find('\n', begin);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(begin, end - begin);
    begin = end + 1;
    ++line_no;
    if (line.empty() || line[0] == '#') continue;
    const std::size_t tab = line.find('\t');
    const auto topic = std::find(topics.begin(), topics.end(), line.substr(0, tab == std::string::npos ? 0 : tab));
    if (tab == std::string::npos || topic == topics.end())
      throw kiln::format_error("'" + path + "' line " + std::to_string(line_no) +
                               ": expected 'weather|food|sport<TAB>sentence', found '" + line + "'");
    out.push_back({static_cast<int>(topic - topics.begin()), line.substr(tab + 1)});
  }
  return out;
}

// The multi-hot bag-of-words vector of a sentence (unknown words are dropped).
std::vector<float> bag_of_words(const std::string& text, const std::map<std::string, int>& vocabulary) {
  std::vector<float> v(vocabulary_capacity, 0.0f);
  for (const std::string& w : tokens(text))
    if (auto it = vocabulary.find(w); it != vocabulary.end()) v[static_cast<std::size_t>(it->second)] = 1.0f;
  return v;
}

kiln::train::table to_table(const std::vector<sentence>& s, const std::map<std::string, int>& vocabulary) {
  std::vector<float> x;
  std::vector<std::int32_t> y;
  for (const sentence& e : s) {
    const auto v = bag_of_words(e.text, vocabulary);
    x.insert(x.end(), v.begin(), v.end());
    y.push_back(e.topic);
  }
  kiln::train::table t;
  t.add_features("x", x, vocabulary_capacity).add_labels("y", y);
  return t;
}
}  // namespace

int main(int argc, char** argv) {
  std::string path = (std::filesystem::path(__FILE__).parent_path() / "data" / "sentences.tsv").string();
  if (argc >= 3 && std::string(argv[1]) == "--data") path = argv[2];
  try {
    const std::vector<sentence> corpus = read_corpus(path);
    std::vector<sentence> train, test;
    int seen[3] = {};
    for (const sentence& s : corpus) (seen[s.topic]++ % 4 == 3 ? test : train).push_back(s);

    std::map<std::string, int> vocabulary;
    for (const sentence& s : train)
      for (const std::string& w : tokens(s.text)) vocabulary.emplace(w, 0);
    if (vocabulary.size() > static_cast<std::size_t>(vocabulary_capacity))
      throw kiln::error("the training sentences have " + std::to_string(vocabulary.size()) + " distinct words, more than the " +
                        std::to_string(vocabulary_capacity) + " input slots");
    int index = 0;
    for (auto& [w, i] : vocabulary) i = index++;
    std::printf("corpus %s: %zu sentences, %zu for training, %zu for testing; vocabulary of %zu words (input width %d)\n",
                path.c_str(), corpus.size(), train.size(), test.size(), vocabulary.size(), vocabulary_capacity);

    kiln::train::options opt;
    opt.epochs = 40;
    opt.batch_size = 8;
    opt.seed = 2;
    opt.progress = kiln::train::progress_style::quiet;
    kiln::train::trainer<topic_loss, kiln::adam, topic_logits> trainer(kiln::adam{.lr = 0.01}, opt);
    const kiln::train::table test_table = to_table(test, vocabulary);
    trainer.fit(to_table(train, vocabulary), test_table);
    std::printf("%5s %12s %10s %14s\n", "epoch", "train loss", "test loss", "test accuracy");
    for (const auto& r : trainer.history())
      if (r.epoch == 1 || r.epoch % 10 == 0) std::printf("%5d %12.4f %10.4f %14.3f\n", r.epoch, r.train_loss, r.val_loss, r.val_accuracy);
    std::printf("learned PReLU slope a = %.3f (initialized to 0.25)\n\n", trainer.step().param("prelu1.weight")[0]);

    kiln::cpu::function<topic_logits> classify(trainer.step());
    auto predict = [&](const std::string& text) {
      const auto v = bag_of_words(text, vocabulary);
      float logits[3];
      classify.run(1, {{"x", v}}, logits);
      return static_cast<int>(std::max_element(logits, logits + 3) - logits);
    };
    int correct = 0;
    std::printf("%-9s %-8s    %s\n", "predicted", "actual", "test sentence");
    for (const sentence& s : test) {
      const int p = predict(s.text);
      correct += p == s.topic;
      std::printf("%-9s %-8s %s %s\n", topics[static_cast<std::size_t>(p)].c_str(), topics[static_cast<std::size_t>(s.topic)].c_str(),
                  p == s.topic ? "  " : "✗ ", s.text.c_str());
    }
    std::printf("test accuracy %d/%zu\n\nnew sentences:\n", correct, test.size());
    for (const char* s : {"Grill the fish with garlic and lemon.", "The team trains for the cup final.",
                          "Strong winds and rain tonight.", "The cheese cake was sweet."})
      std::printf("  %-8s %s\n", topics[static_cast<std::size_t>(predict(s))].c_str(), s);
    return 3 * correct >= 2 * static_cast<int>(test.size()) ? 0 : 1;  // chance would be 1/3
  } catch (const kiln::error& e) {
    std::fprintf(stderr, "text_classifier: %s\n", e.what());
    return 1;
  }
}
