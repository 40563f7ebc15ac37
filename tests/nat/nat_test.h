/* nat_test.h - a tiny assertion kit for the nat/ unit tests.
 *
 * Each test program runs its checks and exits non-zero if any failed;
 * failures name the file, line, expression and values. */
#ifndef NAT_TEST_H
#define NAT_TEST_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int nat_test_failures;
static int nat_test_checks;

#define CHECK(cond)                                                                  \
  do {                                                                               \
    nat_test_checks++;                                                               \
    if (!(cond)) {                                                                   \
      nat_test_failures++;                                                           \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);      \
    }                                                                                \
  } while (0)

#define CHECK_EQ_U64(a, b)                                                           \
  do {                                                                               \
    uint64_t va_ = (uint64_t)(a), vb_ = (uint64_t)(b);                               \
    nat_test_checks++;                                                               \
    if (va_ != vb_) {                                                                \
      nat_test_failures++;                                                           \
      fprintf(stderr, "%s:%d: %s == %s failed: %" PRIu64 " != %" PRIu64 "\n",       \
              __FILE__, __LINE__, #a, #b, va_, vb_);                                 \
    }                                                                                \
  } while (0)

#define CHECK_EQ_INT(a, b)                                                           \
  do {                                                                               \
    long va_ = (long)(a), vb_ = (long)(b);                                           \
    nat_test_checks++;                                                               \
    if (va_ != vb_) {                                                                \
      nat_test_failures++;                                                           \
      fprintf(stderr, "%s:%d: %s == %s failed: %ld != %ld\n", __FILE__, __LINE__,   \
              #a, #b, va_, vb_);                                                     \
    }                                                                                \
  } while (0)

#define CHECK_STREQ(a, b)                                                            \
  do {                                                                               \
    const char *va_ = (a), *vb_ = (b);                                               \
    nat_test_checks++;                                                               \
    if (va_ == NULL || vb_ == NULL || strcmp(va_, vb_) != 0) {                       \
      nat_test_failures++;                                                           \
      fprintf(stderr, "%s:%d: %s == %s failed: \"%s\" != \"%s\"\n", __FILE__,       \
              __LINE__, #a, #b, va_ ? va_ : "(null)", vb_ ? vb_ : "(null)");         \
    }                                                                                \
  } while (0)

/* Ends main(): prints a summary line, exit status 1 if anything failed. */
#define NAT_TEST_DONE(name)                                                          \
  do {                                                                               \
    fprintf(stderr, "%s: %d checks, %d failed\n", (name), nat_test_checks,           \
            nat_test_failures);                                                      \
    return nat_test_failures ? 1 : 0;                                                \
  } while (0)

#endif /* NAT_TEST_H */
