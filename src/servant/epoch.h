/* The chat epoch (epoch.c): every start of a servant is a new epoch, so that receivers, who
 * keep one replay window per origin (nm_replay), accept its lines from seq 1 again. The
 * counter lives in <state-dir>/epoch as a decimal number and a newline; each start reads it,
 * adds 1 and writes it back atomically before publishing anything. A missing file is epoch 0
 * (the first start makes it 1); a file that is not a number is refused, never reset: a
 * smaller epoch would make every receiver refuse our lines as stale. */
#ifndef SV_EPOCH_H
#define SV_EPOCH_H

#include <stddef.h>
#include <stdint.h>

#define SV_EPOCH_FILE "epoch"

/* The file's contents: decimal digits, optionally followed by one newline. Returns 0, or
 * -EINVAL for anything else (empty, blanks, a sign, more lines), -ERANGE past 2^64 - 1. */
int sv_epoch_parse(const char *buf, size_t len, uint64_t *out);

/* Reads dir/epoch, adds 1, writes it back (a 0600 temporary file, fsync, rename, fsync of
 * the folder) and returns the new epoch in *epoch. dir must exist (the identity made it).
 * Returns 0, or a negative code with the reason in err naming the file. */
int sv_epoch_next(const char *dir, uint64_t *epoch, char *err, size_t errlen);

#endif
