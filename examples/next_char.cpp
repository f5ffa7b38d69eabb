// Next-character prediction, the notes' next-token example, in the style of Bengio et al. 2003 ("A neural
// probabilistic language model"): the previous 3 characters are looked up in a learned embedding table (27 rows
// of 10 numbers: the 26 letters and '.', which stands for the start and the end of a word), the 3 embeddings
// side by side go through a 200-unit tanh layer, and a softmax over the 27 characters predicts the next one.
//
// The corpus is a real word list: Debian's wamerican (/usr/share/dict/words), lowercased, letters only, each
// word once. A word is in the validation set when a hash of it says so (one in ten), so the split does not
// depend on the list's order. Every position of a word is one example: "kiln" gives "..." → k, "..k" → i,
// ".ki" → l, "kil" → n, "iln" → '.'. Trained with Adam (lr 0.003 falling to 0.0003 for the last epochs), batch
// 256. It prints the validation loss (nats per character: ln 27 = 3.30 is a uniform guess) and words sampled
// from the trained model. bench/peers/next_char_torch.py trains the same model the same way in PyTorch.
//
//   next_char [--words FILE] [--epochs N] [--seed S] [--samples N]
#include <kiln/kiln.hpp>
#include <kiln/core/hash.hpp>
#include <kiln/cpu/train_step.hpp>
#include <kiln/cpu/trainer.hpp>
#include <kiln/io/atomic_file.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace {
constexpr int alphabet = 27;  // '.' and a … z
constexpr int context_length = 3;
constexpr auto net = kiln::nn::sequential(kiln::embedding<alphabet, 10>{}, kiln::dense<200>{}, kiln::tanh, kiln::dense<alphabet>{});
constexpr auto context = kiln::tokens<alphabet, context_length>("x");
struct next_char_loss {
  constexpr auto operator()() const { return kiln::cross_entropy(net(context), kiln::labels<alphabet>("y")); }
};
struct next_char_logits {
  constexpr auto operator()() const { return net(context); }
};

// Lowercased words of letters only, each once, in the list's order.
std::vector<std::string> read_words(const std::string& path) {
  const std::string text = kiln::io::read_file(path);
  std::vector<std::string> words;
  std::set<std::string> seen;
  std::size_t begin = 0;
  while (begin < text.size()) {
    std::size_t end = text.find('\n', begin);
    if (end == std::string::npos) end = text.size();
    std::string w = text.substr(begin, end - begin);
    begin = end + 1;
    bool letters = !w.empty();
    for (char& c : w) {
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
      letters = letters && c >= 'a' && c <= 'z';
    }
    if (letters && seen.insert(w).second) words.push_back(w);
  }
  return words;
}

int code(char c) { return c == '.' ? 0 : c - 'a' + 1; }
char character(int code) { return code == 0 ? '.' : static_cast<char>('a' + code - 1); }

// Every (context, next character) pair of the words: [examples, 3] token ids and [examples] labels.
kiln::train::table examples(const std::vector<std::string>& words) {
  std::vector<std::int32_t> x, y;
  for (const std::string& w : words) {
    int ctx[context_length] = {};
    for (char c : w + ".") {
      x.insert(x.end(), ctx, ctx + context_length);
      y.push_back(code(c));
      std::rotate(ctx, ctx + 1, ctx + context_length);
      ctx[context_length - 1] = code(c);
    }
  }
  kiln::train::table t;
  t.add_labels("x", std::move(x), context_length).add_labels("y", std::move(y));
  return t;
}
}  // namespace

int main(int argc, char** argv) {
  std::string path = "/usr/share/dict/words";
  int epochs = 8, samples = 12;
  std::uint64_t seed = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--words") path = argv[i + 1];
    else if (a == "--epochs") epochs = std::max(1, std::atoi(argv[i + 1]));
    else if (a == "--seed") seed = std::strtoull(argv[i + 1], nullptr, 10);
    else if (a == "--samples") samples = std::max(0, std::atoi(argv[i + 1]));
    else {
      std::fprintf(stderr, "usage: next_char [--words FILE] [--epochs N] [--seed S] [--samples N]\n");
      return 2;
    }
  }
  try {
    const auto start = std::chrono::steady_clock::now();
    std::vector<std::string> train_words, validation_words;
    std::vector<std::string> words;
    try {
      words = read_words(path);
    } catch (const kiln::io_error& e) {
      if (path != "/usr/share/dict/words") throw;
      throw kiln::error(std::string("skipped: no word list: ") + e.what() + " (apt-get install wamerican, or give --words FILE)");
    }
    for (const std::string& w : words) (kiln::fnv1a64(w) % 10 == 0 ? validation_words : train_words).push_back(w);
    const kiln::train::table train = examples(train_words), validation = examples(validation_words);
    std::printf("corpus %s: %zu words of letters only (%zu for training, %zu for validation): %zu and %zu examples "
                "of %d characters of context\n",
                path.c_str(), words.size(), train_words.size(), validation_words.size(), train.rows(), validation.rows(),
                context_length);
    if (train.rows() == 0 || validation.rows() == 0) throw kiln::format_error("'" + path + "' holds too few words to train on");

    kiln::train::options opt;
    opt.epochs = 1;  // fit() is called once per epoch, to lower the learning rate at the end
    opt.batch_size = 256;
    opt.seed = seed;
    opt.progress = kiln::train::progress_style::quiet;
    kiln::train::trainer<next_char_loss, kiln::adam> trainer(kiln::adam{.lr = 3e-3}, opt);
    std::printf("%5s %12s %16s %9s\n", "epoch", "train loss", "validation loss", "seconds");
    // the last quarter of the epochs at a tenth of the learning rate
    const int fast = std::max(1, epochs - epochs / 4);
    for (int e = 1; e <= epochs; ++e) {
      trainer.step().optimizer().lr = e <= fast ? 3e-3 : 3e-4;
      trainer.fit(train, validation);
      const auto& r = trainer.history().back();
      std::printf("%5d %12.4f %16.4f %9.2f\n", e, r.train_loss, r.val_loss, r.seconds);
    }
    const double validation_loss = trainer.history().back().val_loss;

    // sampling: from "...", draw each next character from the model's softmax until '.'
    kiln::cpu::function<next_char_logits> logits_of(trainer.step());
    std::mt19937_64 rng(seed);
    std::printf("sampled words:");
    for (int s = 0; s < samples; ++s) {
      std::vector<std::int32_t> ctx(context_length, 0);
      std::string word;
      float logits[alphabet];
      while (word.size() < 30) {
        logits_of.run(1, {{"x", ctx}}, logits);
        double p[alphabet], total = 0;
        const float top = *std::max_element(logits, logits + alphabet);
        for (int c = 0; c < alphabet; ++c) total += p[c] = std::exp(static_cast<double>(logits[c] - top));
        double u = static_cast<double>(rng() >> 11) * 0x1.0p-53 * total;
        int next = 0;
        while (next + 1 < alphabet && u >= p[next]) u -= p[next++];
        if (next == 0) break;
        word += character(next);
        std::rotate(ctx.begin(), ctx.begin() + 1, ctx.end());
        ctx.back() = next;
      }
      std::printf(" %s", word.c_str());
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("\nvalidation loss: %.4f nats per character (uniform guess: %.4f)\nwall time: %.1f s\n", validation_loss,
                std::log(static_cast<double>(alphabet)), seconds);
    return validation_loss < std::log(static_cast<double>(alphabet)) ? 0 : 1;
  } catch (const kiln::error& e) {
    std::fprintf(stderr, "next_char: %s\n", e.what());
    return 1;
  }
}
