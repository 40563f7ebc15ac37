/* narrate: what a scenario tells its watcher as it runs (the demo's running commentary).
 *
 * <narrate process="P" regex="..." prefix="..."/> follows a process's log from then on (from
 * the start of its current incarnation, so lines printed since it started count too): a
 * thread reads the new complete lines every 20 ms and prints those that match on stdout,
 * as "  12.3s  PREFIX  LINE", or only the regex's first group when it has one (to drop a
 * log's timestamp and program name). <say text="..."/> prints a heading, and <exec
 * show="yes"/> the command's output, through the same lock, so lines never interleave.
 *
 * Only the narrator thread reads the logs it follows, from paths copied when the rule was
 * added: it never touches structures the main thread writes. Narration is output only; it
 * asserts nothing (expect-line does). */
#ifndef NSIM_NARRATE_H
#define NSIM_NARRATE_H

#include "run.h"

#define NSIM_NARRATE_RULES 64

/* Starts the narrator thread (idempotent). Returns 0 or a negative code. */
int nsim_narrate_start(struct nsim_run *r);
/* Prints what the followed logs still hold, then stops the thread and frees its memory.
 * Safe when it never started. */
void nsim_narrate_stop(struct nsim_run *r);

/* Follows process p's streams (NSIM_STREAM_*) for lines containing text or matching the
 * extended regex regex (neither: every line), printed with prefix (NULL: the process's
 * name). Returns 0, -EINVAL (bad regex: err says so), -ENOSPC (too many rules). */
int nsim_narrate_follow(struct nsim_run *r, const struct nsim_proc *p, int streams, const char *text,
                        const char *regex, const char *prefix, char *err, size_t errlen);

/* Prints a heading ("== text =="); each line of text (a command's output), indented and
 * after prefix when not NULL. Both print what the followed logs hold first. */
void nsim_narrate_say(struct nsim_run *r, const char *text);
void nsim_narrate_lines(struct nsim_run *r, const char *prefix, const char *text);

#endif
