/* capture: a packet capture of the simulated internet, and what it must (not) show.
 *
 * <capture name="wire"/> runs tcpdump in the internet core's namespace on its bridge br0,
 * the segment every public host and every router's WAN side hangs on, so it sees every
 * packet that crosses the simulated internet (after NAT), and nothing of the host's own
 * network. The file, RUNDIR/NAME.pcap, is bounded (RLIMIT_FSIZE: tcpdump is stopped by
 * SIGXFSZ at max-size) and removed with the run (recorded in the state file before it
 * exists, so the watchdog removes it too) unless keep="yes".
 *
 * <expect-capture capture="wire" .../> stops the capture (SIGTERM: tcpdump writes out what
 * it holds and prints its statistics), then reads the file (pcap.h). */
#ifndef NSIM_CAPTURE_H
#define NSIM_CAPTURE_H

#include "run.h"

/* The capture process for a <capture> step, added but not started (its argv: tcpdump
 * -i br0 -w RUNDIR/NAME.pcap ...; the internet core's namespace; the size bound). Returns
 * it, or NULL with the reason in err. */
struct nsim_proc *nsim_capture_add(struct nsim_run *r, const struct nsim_step *s, char *err,
                                   size_t errlen);

/* Checks an <expect-capture> step against the ended capture p. Returns 1 when everything it
 * asks holds, 0 when not; detail says what the capture held either way. */
int nsim_capture_check(struct nsim_run *r, const struct nsim_step *s, struct nsim_proc *p,
                       char *detail, size_t detaillen);

#endif
