/* nm_log's rate limit: a burst of records of a kind, then at most N a second, and a summary of
 * what was suppressed at most once a second. The records go to stderr, which each test captures in a temporary file. */
#include "nm_log.h"
#include "nmt.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static FILE *capture;
static int saved_stderr = -1;

/* From here on, stderr goes into a fresh temporary file. */
static void capture_start(void) {
  fflush(stderr);
  capture = tmpfile();
  saved_stderr = dup(2);
  dup2(fileno(capture), 2);
}

/* Stops capturing and returns what was written (static buffer). */
static const char *capture_end(void) {
  static char text[16384];
  fflush(stderr);
  dup2(saved_stderr, 2);
  close(saved_stderr);
  rewind(capture);
  size_t n = fread(text, 1, sizeof text - 1, capture);
  text[n] = 0;
  fclose(capture);
  return text;
}

static int count_of(const char *text, const char *needle) {
  int n = 0;
  for (const char *p = strstr(text, needle); p; p = strstr(p + 1, needle)) n++;
  return n;
}

static void test_under_the_limit_everything_is_written(void) {
  nm_log_rate r = NM_LOG_RATE_INIT_BURST("refused connections", 3, 3);
  capture_start();
  int a = nm_log_ratelimited_at(&r, 1000, NM_LOG_WARN, "refused %d", 1);
  int b = nm_log_ratelimited_at(&r, 1100, NM_LOG_WARN, "refused %d", 2);
  int c = nm_log_ratelimited_at(&r, 1900, NM_LOG_WARN, "refused %d", 3);
  int flushed = nm_log_rate_flush_at(&r, 5000); /* nothing suppressed, nothing to say */
  const char *out = capture_end();
  NMT_CHECK(a == 1 && b == 1 && c == 1);
  NMT_EQ_INT(flushed, 0);
  NMT_EQ_INT(count_of(out, "refused "), 3);
  NMT_HAS(out, "warn: refused 3");
  NMT_CHECK(strstr(out, "suppressed") == NULL);
}

static void test_a_burst_is_cut_and_summarized_by_the_next_record(void) {
  nm_log_rate r = NM_LOG_RATE_INIT_BURST("refused connections", 5, 5);
  capture_start();
  int written = 0;
  /* 1,536 refusals within 0.69 s, as in issue 9's attack: the burst of 5, then one every
   * 200 ms (at 0.2, 0.4 and 0.6 s). */
  for (int i = 0; i < 1536; i++)
    written += nm_log_ratelimited_at(&r, 10000 + (uint64_t)i * 690 / 1536, NM_LOG_WARN,
                                     "connection %d refused", i);
  uint64_t suppressed = r.suppressed;
  /* The next record written brings the summary first, then itself. */
  int late_written = nm_log_ratelimited_at(&r, 12000, NM_LOG_WARN, "connection %s refused", "late");
  const char *out = capture_end();
  NMT_EQ_INT(written, 8);
  NMT_EQ_INT(suppressed, 1528);
  NMT_EQ_INT(late_written, 1);
  NMT_EQ_INT(r.suppressed, 0);
  NMT_EQ_INT(count_of(out, " refused\n"), 9);
  NMT_HAS(out, "connection 4 refused");
  NMT_CHECK(strstr(out, "connection 5 refused") == NULL);
  NMT_HAS(out, "refused connections: 1528 more suppressed in the last 2 s");
  const char *summary = strstr(out, "suppressed"), *late = strstr(out, "connection late");
  NMT_CHECK(summary && late && summary < late);
}

static void test_flush_writes_the_summary_a_second_later(void) {
  nm_log_rate r = NM_LOG_RATE_INIT_BURST("bad frames", 1, 1);
  capture_start();
  nm_log_ratelimited_at(&r, 1000, NM_LOG_WARN, "bad frame a");
  nm_log_ratelimited_at(&r, 1200, NM_LOG_WARN, "bad frame b");
  nm_log_ratelimited_at(&r, 1300, NM_LOG_WARN, "bad frame c");
  int early = nm_log_rate_flush_at(&r, 1500); /* the first suppressed one is 0.3 s old */
  int due = nm_log_rate_flush_at(&r, 2200);
  int again = nm_log_rate_flush_at(&r, 9000); /* said once */
  const char *out = capture_end();
  NMT_CHECK(early == 0 && due == 1 && again == 0);
  NMT_HAS(out, "bad frame a");
  NMT_CHECK(strstr(out, "bad frame b") == NULL);
  NMT_HAS(out, "warn: bad frames: 2 more suppressed in the last 1 s");
  NMT_EQ_INT(count_of(out, "suppressed"), 1);
}

static void test_a_sustained_flood_gets_the_rate_and_a_summary_a_second(void) {
  nm_log_rate r = NM_LOG_RATE_INIT_BURST("refused admissions", 2, 2);
  capture_start();
  int written = 0;
  /* 100 a second for 10 s. */
  for (int i = 0; i < 1000; i++)
    written += nm_log_ratelimited_at(&r, 1000 + (uint64_t)i * 10, NM_LOG_INFO, "refused %d", i);
  nm_log_rate_flush_at(&r, 20000);
  const char *out = capture_end();
  /* The burst of 2, then 2 a second. */
  NMT_CHECK(written >= 20 && written <= 23);
  /* At most one summary a second (one comes with the first record written a second or more
   * after the first one suppressed), and together they count every record not written. */
  int summaries = 0;
  long total = 0;
  for (const char *p = strstr(out, "refused admissions: "); p; p = strstr(p + 1, "refused admissions: ")) {
    summaries++;
    total += strtol(p + strlen("refused admissions: "), NULL, 10);
  }
  NMT_CHECK(summaries >= 5 && summaries <= 10);
  NMT_EQ_INT(total, 1000 - written);
  NMT_EQ_INT(count_of(out, "info: refused ") - summaries, written);
}

static void test_the_default_burst_and_a_disabled_level(void) {
  nm_log_rate r = NM_LOG_RATE_INIT("noise", 0);
  capture_start();
  int written = 0;
  for (int i = 0; i < NM_LOG_RATE_BURST + 50; i++)
    written += nm_log_ratelimited_at(&r, 5000, NM_LOG_WARN, "noise %d", i);
  /* Below the log level: neither written nor counted. */
  int debug = nm_log_ratelimited_at(&r, 5000, NM_LOG_DEBUG, "debug noise");
  const char *out = capture_end();
  NMT_EQ_INT(debug, 0);
  NMT_EQ_INT(written, NM_LOG_RATE_BURST);
  NMT_EQ_INT(r.suppressed, 50);
  NMT_CHECK(strstr(out, "debug noise") == NULL);
  /* Refilled at NM_LOG_RATE_DEFAULT a second, never beyond the burst. */
  capture_start();
  written = 0;
  for (int i = 0; i < NM_LOG_RATE_BURST + 50; i++)
    written += nm_log_ratelimited_at(&r, 1000000, NM_LOG_WARN, "noise again %d", i);
  capture_end();
  NMT_EQ_INT(written, NM_LOG_RATE_BURST);
}

static void test_the_clock_version_writes(void) {
  nm_log_rate r = NM_LOG_RATE_INIT_BURST("live", 2, 2);
  capture_start();
  int written = 0;
  for (int i = 0; i < 10; i++) written += nm_log_ratelimited(&r, NM_LOG_WARN, "live %d", i);
  const char *out = capture_end();
  /* Ten calls within far less than a second: the burst of two (a third if the clock moved
   * half a second meanwhile). */
  NMT_CHECK(written >= 2 && written <= 3);
  NMT_HAS(out, "live 0");
}

int main(void) {
  nm_log_init("unit_log", NM_LOG_INFO);
  NMT_RUN(test_under_the_limit_everything_is_written);
  NMT_RUN(test_a_burst_is_cut_and_summarized_by_the_next_record);
  NMT_RUN(test_flush_writes_the_summary_a_second_later);
  NMT_RUN(test_a_sustained_flood_gets_the_rate_and_a_summary_a_second);
  NMT_RUN(test_the_default_burst_and_a_disabled_level);
  NMT_RUN(test_the_clock_version_writes);
  return nmt_done();
}
