/* nmt: the unit tests' tiny assertion kit.
 *
 * Each check prints what failed with file and line and counts; a failing check does not stop
 * the test (so one run shows every broken expectation), and nmt_done() turns the count into
 * the exit status ctest reads. Each unit_*.c is its own executable, run in its own process. */
#ifndef NMT_H
#define NMT_H

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static int nmt__checks, nmt__failures, nmt__test_failures;
static const char *nmt__current = "?";

static int nmt__report(int ok, const char *file, int line, const char *what) {
  nmt__checks++;
  if (!ok) {
    nmt__failures++;
    nmt__test_failures++;
    fprintf(stderr, "  FAIL %s:%d [%s]: %s\n", file, line, nmt__current, what);
  }
  return ok;
}

#define NMT_CHECK(cond) nmt__report(!!(cond), __FILE__, __LINE__, #cond)

#define NMT_EQ_INT(a, b)                                                                      \
  do {                                                                                        \
    long long nmt_a_ = (long long)(a), nmt_b_ = (long long)(b);                               \
    if (!nmt__report(nmt_a_ == nmt_b_, __FILE__, __LINE__, #a " == " #b))                     \
      fprintf(stderr, "       got %lld, expected %lld\n", nmt_a_, nmt_b_);                    \
  } while (0)

#define NMT_EQ_STR(a, b)                                                                      \
  do {                                                                                        \
    const char *nmt_a_ = (a), *nmt_b_ = (b);                                                  \
    int nmt_ok_ = nmt_a_ && nmt_b_ && strcmp(nmt_a_, nmt_b_) == 0;                            \
    if (!nmt__report(nmt_ok_, __FILE__, __LINE__, #a " == " #b))                              \
      fprintf(stderr, "       got \"%s\", expected \"%s\"\n", nmt_a_ ? nmt_a_ : "(null)",     \
              nmt_b_ ? nmt_b_ : "(null)");                                                    \
  } while (0)

/* haystack contains needle */
#define NMT_HAS(haystack, needle)                                                             \
  do {                                                                                        \
    const char *nmt_h_ = (haystack), *nmt_n_ = (needle);                                      \
    int nmt_ok_ = nmt_h_ && nmt_n_ && strstr(nmt_h_, nmt_n_) != NULL;                         \
    if (!nmt__report(nmt_ok_, __FILE__, __LINE__, #haystack " contains " #needle))            \
      fprintf(stderr, "       \"%s\" lacks \"%s\"\n", nmt_h_ ? nmt_h_ : "(null)",             \
              nmt_n_ ? nmt_n_ : "(null)");                                                    \
  } while (0)

#define NMT_RUN(fn)                                                                           \
  do {                                                                                        \
    nmt__current = #fn;                                                                       \
    nmt__test_failures = 0;                                                                   \
    int nmt_before_ = nmt__checks;                                                            \
    fn();                                                                                     \
    printf("%s %s (%d checks)\n", nmt__test_failures ? "FAIL" : "ok  ", #fn,                  \
           nmt__checks - nmt_before_);                                                        \
    fflush(stdout);                                                                           \
  } while (0)

static int nmt_done(void) {
  printf("%d checks, %d failed\n", nmt__checks, nmt__failures);
  return nmt__failures ? 1 : 0;
}

#endif
