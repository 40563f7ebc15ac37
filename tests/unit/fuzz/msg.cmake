# One libFuzzer target per protocol message that a manager, a servant (or relay) or
# natmesh-ctl receives: fuzz_msg.c compiled once per type, each seeded from
# corpus/msg-<name>/ and run by ctest as fuzz_msg_<name> (name with '-' as '_').
# Included by CMakeLists.txt here, after natmesh_add_fuzzer() is defined.
set(NATMESH_FUZZ_MESSAGES
  # to the manager
  hello listening heartbeat complaint mapping relay-load observe
  # to a servant or relay, from the manager
  welcome peers delta heartbeat-ack relay-assign relay-serve observed punch neighbours
  # between peers
  peer-hello chat pull direct
  # to natmesh-ctl
  status)

foreach(msg ${NATMESH_FUZZ_MESSAGES})
  string(REPLACE "-" "_" id ${msg})
  string(TOUPPER ${id} type)
  natmesh_add_fuzzer(NAME msg_${id}
                     SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz_msg.c
                     DEFINITIONS NM_FUZZ_MSG_TYPE=NM_MSG_${type}
                     CORPUS ${CMAKE_CURRENT_LIST_DIR}/corpus/msg-${msg})
endforeach()
