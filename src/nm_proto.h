/* nm_proto: the frame types natmesh speaks. docs/protocol.md describes every one. */
#ifndef NM_PROTO_H
#define NM_PROTO_H

#include <stdint.h>

typedef enum {
  /* servant/relay/ctl <-> manager */
  NM_MSG_HELLO = 0x01,         /* -> manager: register (id, name, role, port or ask) */
  NM_MSG_WELCOME = 0x02,       /* <- manager: observed address, assigned port, timing */
  NM_MSG_LISTENING = 0x03,     /* -> manager: now listening on port (or port busy) */
  NM_MSG_PEERS = 0x04,         /* <- manager: the full peer list, asker marked <me> */
  NM_MSG_DELTA = 0x05,         /* <- manager: one change to the list (upsert or leave) */
  NM_MSG_HEARTBEAT = 0x06,     /* -> manager: alive, with the list version held */
  NM_MSG_HEARTBEAT_ACK = 0x07, /* <- manager: the current list version */
  NM_MSG_PEERS_REQUEST = 0x08, /* -> manager: send me the full list */
  NM_MSG_BYE = 0x09,           /* -> manager: leaving cleanly */
  NM_MSG_ERROR = 0x0A,         /* <- either side: why the session is being closed */
  NM_MSG_STATUS_REQUEST = 0x0B,/* ctl -> manager */
  NM_MSG_STATUS = 0x0C,        /* manager -> ctl: the overlay as the manager sees it */
  NM_MSG_MAPPING = 0x0D,       /* -> manager: port-mapping result (method, external addr) */
  NM_MSG_COMPLAINT = 0x0E,     /* -> manager: I could not reach this peer */
  NM_MSG_RELAY_ASSIGN = 0x0F,  /* <- manager: pull from this relay (to a suspicious servant) */
  NM_MSG_RELAY_SERVE = 0x10,   /* <- manager: serve these clients (to a relay) */
  NM_MSG_RELAY_LOAD = 0x11,    /* relay -> manager: load and counters */
  NM_MSG_OBSERVE = 0x12,       /* -> manager, first frame of a second session: see my other family */
  NM_MSG_OBSERVED = 0x13,      /* <- manager: the address that session came from */
  NM_MSG_PUNCH = 0x14,         /* <- manager: dial this peer's observed endpoint at a moment */
  NM_MSG_DIRECT = 0x15,        /* relay client -> relay: these origins reach me directly */
  NM_MSG_NEIGHBOURS = 0x16,    /* <- manager: the peers to keep connections to (bounded mesh) */

  /* servant <-> servant (and relay) */
  NM_MSG_PEER_HELLO = 0x20,    /* first frame on a peer connection: who I am */
  NM_MSG_CHAT = 0x21,          /* a chat line, identified by (origin, seq) */
  NM_MSG_PULL = 0x22,          /* suspicious servant -> relay: start forwarding to me */
} nm_msg_type;

const char *nm_msg_name(uint8_t type);

/* A servant's reachability, as the manager judges it. */
typedef enum {
  NM_REACH_UNKNOWN = 0, /* just joined, nothing known */
  NM_REACH_DIRECT,      /* reachable at the address the manager sees */
  NM_REACH_MAPPED,      /* reachable through a UPnP/NAT-PMP port mapping */
  NM_REACH_SUSPICIOUS,  /* peers cannot reach it; waiting for a relay */
  NM_REACH_RELAYED,     /* suspicious and pulling from a relay */
} nm_reach_state;

const char *nm_reach_name(nm_reach_state s);
int nm_reach_parse(const char *s, nm_reach_state *out);

/* What a node is in the overlay. A role is an enum everywhere but on the wire. */
typedef enum {
  NM_ROLE_SERVANT = 0, /* a peer with a user: publishes and receives chat */
  NM_ROLE_RELAY,       /* a dedicated relay node: receives and forwards only */
} nm_role;

const char *nm_role_name(nm_role r);
int nm_role_parse(const char *s, nm_role *out);

/* How a servant made its port reachable, as it reported to the manager. */
typedef enum {
  NM_MAPPING_NONE = 0,
  NM_MAPPING_UPNP,
  NM_MAPPING_NATPMP,
  NM_MAPPING_PCP, /* RFC 6887 MAP */
} nm_mapping_kind;
#define NM_MAPPING_LAST NM_MAPPING_PCP

const char *nm_mapping_name(nm_mapping_kind k);
int nm_mapping_parse(const char *s, nm_mapping_kind *out);

/* Where a candidate address of a servant comes from (the peer list's <cand kind>). */
typedef enum {
  NM_CAND_LOCAL = 0, /* an address of one of its own interfaces, as it reported them */
  NM_CAND_OBSERVED,  /* the address and port the manager saw its session come from */
  NM_CAND_MAPPED,    /* the external address of a UPnP/NAT-PMP mapping it made */
  NM_CAND_PUNCH,     /* the address and source port the manager saw its session come from,
                        behind NAT: only for a coordinated simultaneous open (punch) */
} nm_cand_kind;

const char *nm_cand_kind_name(nm_cand_kind k);
int nm_cand_kind_parse(const char *s, nm_cand_kind *out);

#define NM_ID_LEN 16 /* hex characters of a servant id (64 random bits) */
#define NM_NAME_MAX 32
#define NM_CHAT_MAX 4096 /* bytes of one chat line */

#endif
