/* libFuzzer target: netsim's capture reader (netsim/pcap.c) on arbitrary bytes. A capture
 * holds whatever crossed the simulated internet, which the programs under test (and an
 * attacker among them) choose, so the reader must survive any file: frames cut short, lying
 * lengths, TCP sequence numbers that jump, records that claim 64 KB. Accepted results must
 * be consistent: every connection's counts within the file's size. */
#include "pcap.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *needles[NSIM_PCAP_MAX_NEEDLES] = {"secret", "\x17\x03\x03"};
  size_t len[NSIM_PCAP_MAX_NEEDLES] = {6, 3};
  struct nsim_pcap_result res;
  char err[256];
  if (nsim_pcap_analyze_buf(data, size, needles, len, NSIM_PCAP_MAX_NEEDLES, &res, err,
                            sizeof err) < 0)
    return 0;
  if (res.nconns < 0 || res.nconns > NSIM_PCAP_MAX_CONNS) abort();
  for (int i = 0; i < res.nconns; i++) {
    const struct nsim_pcap_conn *c = &res.conns[i];
    if (c->bytes[0] > size || c->bytes[1] > size) abort();
    if (nsim_pcap_conn_tls13(c) && nsim_pcap_conn_not_tls13(c)) abort();
  }
  nsim_pcap_free(&res);
  return 0;
}
