/* libFuzzer target: a peer list or delta document from the network, through nm_xml_parse
 * and nm_peerlist_from_doc / nm_peer_from_xml, then back out and in again: anything
 * accepted must survive its own round trip. */
#include "nm_peerlist.h"
#include "nm_xml.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static int inited;
  if (!inited) {
    nm_xml_init();
    inited = 1;
  }
  xmlDoc *doc;
  char err[400];
  if (nm_xml_parse((const char *)data, size, &doc, err, sizeof err) < 0) return 0;
  nm_peerlist l;
  nm_peerlist_init(&l);
  char me[NM_ID_LEN + 1];
  if (nm_peerlist_from_doc(doc, &l, me, err, sizeof err) == 0) {
    xmlDoc *out = nm_peerlist_to_doc(&l, me[0] ? me : NULL);
    char *buf;
    size_t len;
    if (nm_xml_dump(out, &buf, &len) == 0) {
      xmlDoc *again;
      nm_peerlist l2;
      nm_peerlist_init(&l2);
      if (nm_xml_parse(buf, len, &again, err, sizeof err) < 0) abort();
      if (nm_peerlist_from_doc(again, &l2, NULL, err, sizeof err) < 0) abort();
      if (l2.count != l.count || l2.version != l.version) abort();
      xmlFreeDoc(again);
      nm_peerlist_close(&l2);
      free(buf);
    }
    xmlFreeDoc(out);
  }
  /* The same document read as a delta. */
  xmlNode *root = xmlDocGetRootElement(doc);
  xmlNode *peer = nm_xml_child(root, "peer");
  if (peer) {
    nm_peer p;
    nm_peer_from_xml(peer, &p, err, sizeof err);
  }
  nm_peerlist_close(&l);
  xmlFreeDoc(doc);
  return 0;
}
