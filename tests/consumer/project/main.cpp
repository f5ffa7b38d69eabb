// Uses kiln through its installed headers: a compile-time hash and the error type.
#include <kiln/core/hash.hpp>
#include <kiln/kiln.hpp>

#include <cstdio>
#include <stdexcept>
#include <string>

// FNV-1a 64 reference values: the offset basis for "" and the published vector for "a".
static_assert(kiln::fnv1a64("") == 0xcbf29ce484222325ull);
static_assert(kiln::fnv1a64("a") == 0xaf63dc4c8601ec8cull);

int main(int argc, char**) {
  // A run-time input (argc) so the hash is also computed at run time, not only folded by the compiler.
  const std::string text(static_cast<std::size_t>(argc), 'a');
  if (kiln::fnv1a64(text) != 0xaf63dc4c8601ec8cull) {
    std::fprintf(stderr, "kiln_consumer: fnv1a64(\"a\") = %llx, expected af63dc4c8601ec8c\n",
                 static_cast<unsigned long long>(kiln::fnv1a64(text)));
    return 1;
  }
  try {
    throw kiln::shape_error("expected batch 32, found 31");
  } catch (const std::runtime_error& e) {
    if (std::string(e.what()) != "expected batch 32, found 31") {
      std::fprintf(stderr, "kiln_consumer: unexpected error text '%s'\n", e.what());
      return 1;
    }
  }
  std::puts("kiln_consumer: find_package(kiln) works");
  return 0;
}
