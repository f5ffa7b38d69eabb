#pragma once
// Embeddings. tokens<V, C>("x") is C token ids per sample, each in [0, V) ([batch, C], fed as int32 and
// range-checked like labels); embedding<V, D> is PyTorch's nn.Embedding(V, D) (weight [V, D], initialized from
// N(0, 1), named emb1.weight, emb2.weight, … by nn::sequential) looking up each token's row: [batch, C·D], the C
// rows side by side (PyTorch: embedding(x).view(batch, C·D), the input of a Bengio-style next-token model).
// The lookup is a gather by index and its gradient a scatter-add of the rows' gradients by the same indices,
// summed in (sample, position) order on every backend (ops/indexing.hpp).
#include <kiln/nn/layers.hpp>

namespace kiln {

template <int Vocabulary, int Count>
struct tokens_expr : leaf_expr<batch, Count, value_kind::labels, leaf_kind::labels> {
  static constexpr int classes = Vocabulary;
  static constexpr int vocabulary = Vocabulary;
};
template <int Vocabulary, int Count = 1>
constexpr auto tokens(std::string_view name) {
  static_assert(Vocabulary > 0 && Count > 0, "kiln: tokens<V, C> needs a vocabulary V > 0 and C > 0 tokens per sample");
  tokens_expr<Vocabulary, Count> e;
  e.info = make_leaf<batch, Count, value_kind::labels, leaf_kind::labels>(name, 2).info;
  e.info.num_classes = Vocabulary;
  return e;
}

namespace checks {
struct embedding {};
}  // namespace checks

// The readable compile error of a lookup whose indices do not fit the table.
template <class Op, int Vocabulary, int IndexVocabulary>
struct vocabulary_check {
  static_assert(Vocabulary == IndexVocabulary, "kiln: the tokens' vocabulary (IndexVocabulary) differs from the embedding's rows (Vocabulary)");
  static constexpr bool ok = true;
};

template <int Vocabulary, int Dim>
struct embedding {
  static_assert(Vocabulary > 0 && Dim > 0, "kiln: embedding<V, D> needs V > 0 rows of D > 0 features");
  static constexpr std::string_view stem = "emb";  // named emb1, emb2, … by nn::sequential
  short_name name{};
  constexpr embedding() = default;
  constexpr explicit embedding(std::string_view n) : name(n) {}

  template <expression X>
  constexpr auto operator()(X x) const { return apply(x, name); }

  template <expression X>
  constexpr auto apply(X x, short_name prefix) const {
    static_assert(X::kind == value_kind::labels, "kiln: an embedding looks up token indices (kiln::tokens<V, C>), not values");
    static_assert(vocabulary_check<checks::embedding, Vocabulary, nn::classes_of<X>()>::ok);
    auto weight = make_leaf<Vocabulary, Dim, value_kind::any, leaf_kind::param>("w", 2).init_normal(1.0);
    weight.info.name = detail::joined(prefix.view(), ".weight");
    return make_expr<lookup_tag, dims{X::shape.rows, X::shape.cols * Dim}>(0, weight, x);
  }

 private:
  struct lookup_tag { static constexpr int emit(builder& b, double, int table, int idx) { return b.gather(table, idx); } };
};

}  // namespace kiln
