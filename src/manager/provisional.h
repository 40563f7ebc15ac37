/* Provisional relays (docs/protocol.md, "Provisional relays"): a servant that joins from
 * behind NAT (cands.h, mgr_nat_judge) with no usable port mapping pulls from a relay at
 * once, so that its first lines reach it within one heartbeat instead of after the
 * complaints that judge it (about two heartbeat intervals). Its reach stays direct: the
 * complaint quorum alone decides "suspicious", and peers keep dialling it.
 *
 * The provisional relay ends one of three ways:
 *   - a usable port mapping arrives: released (peers reach it now);
 *   - the complaint window passes with no live complaint about it: released (peers reach
 *     it: nobody complained);
 *   - a verdict: suspicious (mgr__convict) or the pair path keeps the same relay and token
 *     as the ordinary relay, so the servant's pull carries on (no second pull). */
#ifndef NM_MANAGER_PROVISIONAL_H
#define NM_MANAGER_PROVISIONAL_H

#include "manager.h"

/* s said listening for the first time in this registration (not taking one over that
 * carries its own relay): if it is a servant behind NAT with no usable mapping, no relay
 * and no verdict, pick it a relay now and mark it provisional. Sends nothing: the caller
 * publishes s, then announces its relay. Returns 1 when a relay was assigned. */
int mgr_provisional_on_join(manager *m, mgr_session *s);

/* The provisional relay of s is released: its relay is told, s is told to pull no more
 * (relay-assign without a relay), its entry is published. why goes in the log line. */
void mgr_provisional_release(manager *m, mgr_session *s, const char *why);

/* A verdict came about s: its provisional relay, if any, is now its ordinary one (same
 * relay, same token); only the flag goes. */
void mgr_provisional_settle(mgr_session *s);

/* From the sweep timer: releases every provisional relay whose complaint window passed
 * with no live complaint about its client. */
void mgr_provisional_sweep(manager *m);

#endif
