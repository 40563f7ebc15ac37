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
  case NM_MSG_PEER_HELLO: return "peer-hello";
  case NM_MSG_CHAT: return "chat";
  case NM_MSG_PULL: return "pull";
  default: return "unknown";
  }
}

static const char *nm__reach_names[] = {"unknown", "direct", "mapped", "suspicious", "relayed"};

const char *nm_reach_name(nm_reach_state s) {
  if ((unsigned)s < sizeof nm__reach_names / sizeof *nm__reach_names) return nm__reach_names[s];
  return "unknown";
}

int nm_reach_parse(const char *s, nm_reach_state *out) {
  for (unsigned i = 0; i < sizeof nm__reach_names / sizeof *nm__reach_names; i++)
    if (strcmp(s, nm__reach_names[i]) == 0) {
      *out = (nm_reach_state)i;
      return 0;
    }
  return -1;
}
