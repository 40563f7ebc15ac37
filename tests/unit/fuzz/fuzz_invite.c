/* libFuzzer target: the invite string, which users paste from chats and e-mails. Whatever
 * parses must format back to the very same string (one spelling per invite), and a refusal
 * must say "invite: ..." on one printable line without quoting the secret. */
#include "nm_invite.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char in[NM_INVITE_MAX + 64];
  if (size >= sizeof in) size = sizeof in - 1;
  memcpy(in, data, size);
  in[size] = 0;
  nm_invite inv;
  char err[256] = "";
  if (nm_invite_parse(in, &inv, err, sizeof err) == 0) {
    char out[NM_INVITE_MAX + 1];
    if (nm_invite_format(&inv, out, sizeof out) != 0) abort();
    if (strcmp(out, in) != 0) abort();
    nm_invite again;
    if (nm_invite_parse(out, &again, err, sizeof err) != 0) abort();
    if (memcmp(&again, &inv, sizeof inv) != 0) abort();
    nm_invite_clear(&again);
  } else {
    if (strncmp(err, "invite: ", 8) != 0) abort();
    for (const char *p = err; *p; p++)
      if ((unsigned char)*p < 0x20 || (unsigned char)*p == 0x7f) abort();
  }
  nm_invite_clear(&inv);
  return 0;
}
