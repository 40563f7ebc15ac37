#include "nm_proto.h"

#include <string.h>

const char *nm_msg_name(uint8_t type) {
  switch (type) {
  case NM_MSG_HELLO: return "hello";
  case NM_MSG_WELCOME: return "welcome";
  case NM_MSG_LISTENING: return "listening";
  case NM_MSG_PEERS: return "peers";
  case NM_MSG_DELTA: return "delta";
  case NM_MSG_HEARTBEAT: return "heartbeat";
  case NM_MSG_HEARTBEAT_ACK: return "heartbeat-ack";
  case NM_MSG_PEERS_REQUEST: return "peers-request";
  case NM_MSG_BYE: return "bye";
  case NM_MSG_ERROR: return "error";
  case NM_MSG_STATUS_REQUEST: return "status-request";
  case NM_MSG_STATUS: return "status";
  case NM_MSG_MAPPING: return "mapping";
  case NM_MSG_COMPLAINT: return "complaint";
  case NM_MSG_RELAY_ASSIGN: return "relay-assign";
  case NM_MSG_RELAY_SERVE: return "relay-serve";
  case NM_MSG_RELAY_LOAD: return "relay-load";
  case NM_MSG_OBSERVE: return "observe";
  case NM_MSG_OBSERVED: return "observed";
  case NM_MSG_PUNCH: return "punch";
  case NM_MSG_DIRECT: return "direct";
  case NM_MSG_NEIGHBOURS: return "neighbours";
  case NM_MSG_PEER_HELLO: return "peer-hello";
  case NM_MSG_CHAT: return "chat";
  case NM_MSG_PULL: return "pull";
  default: return "unknown";
  }
}

#define NM__COUNT(a) (sizeof(a) / sizeof *(a))

/* One table per enum: the index is the value, the string its wire name. */
static const char *const nm__reach_names[] = {"unknown", "direct", "mapped", "suspicious", "relayed"};
static const char *const nm__role_names[] = {"servant", "relay"};
static const char *const nm__mapping_names[] = {"none", "upnp", "natpmp", "pcp"};
static const char *const nm__cand_names[] = {"local", "observed", "mapped", "punch"};

static const char *nm__enum_name(const char *const *names, unsigned count, unsigned v) {
  return v < count ? names[v] : names[0];
}

static int nm__enum_parse(const char *const *names, unsigned count, const char *s, unsigned *out) {
  if (!s) return -1;
  for (unsigned i = 0; i < count; i++)
    if (strcmp(s, names[i]) == 0) {
      *out = i;
      return 0;
    }
  return -1;
}

const char *nm_reach_name(nm_reach_state s) {
  return nm__enum_name(nm__reach_names, NM__COUNT(nm__reach_names), (unsigned)s);
}

int nm_reach_parse(const char *s, nm_reach_state *out) {
  unsigned v;
  if (nm__enum_parse(nm__reach_names, NM__COUNT(nm__reach_names), s, &v) < 0) return -1;
  *out = (nm_reach_state)v;
  return 0;
}

const char *nm_role_name(nm_role r) {
  return nm__enum_name(nm__role_names, NM__COUNT(nm__role_names), (unsigned)r);
}

int nm_role_parse(const char *s, nm_role *out) {
  unsigned v;
  if (nm__enum_parse(nm__role_names, NM__COUNT(nm__role_names), s, &v) < 0) return -1;
  *out = (nm_role)v;
  return 0;
}

const char *nm_mapping_name(nm_mapping_kind k) {
  return nm__enum_name(nm__mapping_names, NM__COUNT(nm__mapping_names), (unsigned)k);
}

int nm_mapping_parse(const char *s, nm_mapping_kind *out) {
  unsigned v;
  if (nm__enum_parse(nm__mapping_names, NM__COUNT(nm__mapping_names), s, &v) < 0) return -1;
  *out = (nm_mapping_kind)v;
  return 0;
}

const char *nm_cand_kind_name(nm_cand_kind k) {
  return nm__enum_name(nm__cand_names, NM__COUNT(nm__cand_names), (unsigned)k);
}

int nm_cand_kind_parse(const char *s, nm_cand_kind *out) {
  unsigned v;
  if (nm__enum_parse(nm__cand_names, NM__COUNT(nm__cand_names), s, &v) < 0) return -1;
  *out = (nm_cand_kind)v;
  return 0;
}
