#pragma once
// KILN_TEST_SANITIZED: 1 in a build with AddressSanitizer (the CI's clang build at -O0, where long numerical
// checks take minutes and are left to the optimized build), else 0.
#if defined(__SANITIZE_ADDRESS__)
#define KILN_TEST_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define KILN_TEST_SANITIZED 1
#endif
#endif
#if !defined(KILN_TEST_SANITIZED)
#define KILN_TEST_SANITIZED 0
#endif
