// Snippets that must not compile (one per CASE_* macro), and one control that must.
#include <kiln/kiln.hpp>

using namespace kiln;

constexpr auto x = input<784>("x");
constexpr auto y = labels<10>("y");
constexpr auto net = nn::sequential(dense<128>{}, relu, dense<10>{});

#if defined(CASE_BROADCAST)
constexpr auto bad = x + param<128>("b");
#elif defined(CASE_MATMUL)
constexpr auto bad = matmul(x, param<100, 10>("w"));
#elif defined(CASE_LOSS_SHAPE)
constexpr auto bad = mse(net(x), target<3>("t"));
#elif defined(CASE_KL_PROBS)
constexpr auto bad = kl_div(softmax(net(x)), probability_target<10>("p"));  // the notes' classic bug
#elif defined(CASE_CE_PROBS)
constexpr auto bad = cross_entropy(softmax(net(x)), y);
#elif defined(CASE_BCE_LOGITS)
constexpr auto bad = bce(net(x), target<10>("t"));
#elif defined(CASE_BCEL_PROBS)
constexpr auto bad = bce_with_logits(sigmoid(net(x)), target<10>("t"));
#elif defined(CASE_CE_CLASSES)
constexpr auto bad = cross_entropy(net(x), labels<3>("y3"));
#elif defined(CASE_LONG_NAME)
constexpr auto bad = param<3>("encoder.layers.11.self_attention.query_key_value.weight_of_a_model_whose_names_are_very_long_indeed");  // 99 characters
#elif defined(CASE_EMBEDDING_VOCABULARY)
constexpr auto bad = embedding<10, 4>{}(tokens<12, 3>("t"));  // token ids up to 11 would read past the table
#elif defined(CASE_EMBEDDING_OF_VALUES)
constexpr auto bad = embedding<10, 4>{}(x);
#elif defined(CASE_CONV_CHANNELS)
constexpr auto bad = conv2d<3, 8, 3>{}(image<1, 28, 28>("img"));  // a 3-channel conv on grey images
#elif defined(CASE_CONV_OF_VECTORS)
constexpr auto bad = conv2d<1, 8, 3>{}(x);  // 784 features are not a map until viewed as one
#elif defined(CASE_AS_MAP_WIDTH)
constexpr auto bad = as_map<1, 28, 27>(x);  // 756 ≠ 784
#elif defined(CASE_POOL_LARGER_THAN_MAP)
constexpr auto bad = max_pool2d<3>{}(image<4, 2, 2>("img"));
#elif defined(CASE_CONV_KERNEL_LARGER_THAN_MAP)
constexpr auto bad = conv2d<4, 4, 5, 1, 1>{}(image<4, 2, 2>("img"));
#elif defined(CASE_BATCH_NORM_CHANNELS)
constexpr auto bad = batch_norm<16>{}(conv2d<1, 8, 3>{}(image<1, 28, 28>("img")));
#elif defined(CASE_TENSOR_BROADCAST)
constexpr auto bad = input<2, 3, 4>("t") + tensor_param<3, 5>("u");
#elif defined(CASE_RESHAPE_SIZE)
constexpr auto bad = reshape<-1, 5, 5>(input<2, 3, 4>("t"));
#elif defined(CASE_CONCAT_SHAPES)
constexpr auto bad = concat<1>(input<2, 3>("a"), input<2, 4>("b"));
#elif defined(CASE_SLICE_BATCH)
constexpr auto bad = slice<0, 0, 1>(input<2, 3>("a"));
#elif defined(CASE_PERMUTE_AXES)
constexpr auto bad = permute<0, 1, 1>(input<2, 3>("a"));
#elif defined(CASE_FEED_MISSPELLED) || defined(CASE_FEED_MISSING) || defined(CASE_FEED_TWICE) || defined(CASE_FEED_TYPE) || \
    defined(CASE_FEED_WIDTH) || defined(CASE_PARAM_UNKNOWN)
#include <kiln/cpu/train_step.hpp>
#include <array>
#include <cstdint>
#include <vector>
struct tiny {
  constexpr auto operator()() const { return cross_entropy(dense<3>("fc")(input<4>("x")), labels<3>("y")); }
};
void bad() {
  using namespace kiln::literals;
  cpu::train_step<tiny, adam> step;
  std::vector<float> a(8);
  std::vector<std::int32_t> b(2);
#if defined(CASE_FEED_MISSPELLED)
  step.run(2, "xs"_in = a, "y"_in = b);
#elif defined(CASE_FEED_MISSING)
  step.run(2, "x"_in = a);
#elif defined(CASE_FEED_TWICE)
  step.run(2, "x"_in = a, "y"_in = b, "x"_in = a);
#elif defined(CASE_FEED_TYPE)
  step.run(2, "x"_in = a, "y"_in = a);
#elif defined(CASE_FEED_WIDTH)
  std::array<float, 10> c{};
  step.run(2, "x"_in = c, "y"_in = b);
#else
  (void)step.param<"fc.weigth">();
#endif
}
#elif defined(CASE_CONTROL)
constexpr auto good = kl_div(log_softmax(net(x)), probability_target<10>("p")) + cross_entropy(net(x), y) +
                      sum(batch_norm<8>{}(max_pool2d<2>{}(conv2d<1, 8, 3>{}(as_map<1, 28, 28>(x))))) +
                      sum(concat<2>(permute<0, 2, 1>(reshape<-1, 28, 28>(x)), input<28, 3>("t")) * tensor_param<1, 31>("u"));
#endif
