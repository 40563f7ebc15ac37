/* test_pcp_wire.c - PCP messages (nm_pcp.c): the bytes of a MAP request, what the
 * parser refuses and why, nonce matching, the epoch rule of RFC 6887 8.5 and the
 * retransmission schedule of 8.1.1. */
#include "nat_test.h"
#include "nm_be.h"
#include "nm_pcp.h"

static const uint8_t me4[4] = {10, 0, 1, 2};

static void sample_map(nm_pcp_map *m) {
  static const uint8_t any4[4] = {0, 0, 0, 0};
  int i;
  memset(m, 0, sizeof(*m));
  for (i = 0; i < NM_PCP_NONCE_LEN; i++)
    m->nonce[i] = (uint8_t)(0xa0 + i);
  m->proto = 6;
  m->int_port = 4000;
  m->ext_port = 4000;
  nm_pcp_v4mapped(m->ext_ip, any4);
}

/* A server's answer to req: the request with R set, result, lifetime and epoch filled. */
static size_t answer_of(uint8_t *buf, const uint8_t *req, size_t len, uint8_t result,
                        uint32_t lifetime, uint32_t epoch) {
  memcpy(buf, req, len);
  buf[1] |= 0x80;
  buf[3] = result;
  nm_be32_put(buf + 4, lifetime);
  nm_be32_put(buf + 8, epoch);
  memset(buf + 12, 0, 12);
  return len;
}

static void builds_map_request(void) {
  uint8_t buf[NM_PCP_MAP_LEN], cip[16];
  nm_pcp_map m;
  sample_map(&m);
  nm_pcp_v4mapped(cip, me4);
  CHECK_EQ_INT(nm_pcp_build_map(buf, sizeof(buf), cip, 120, &m), 60);
  CHECK_EQ_INT(buf[0], 2);           /* version */
  CHECK_EQ_INT(buf[1], 1);           /* R=0, MAP */
  CHECK_EQ_INT(buf[2] | buf[3], 0);  /* reserved */
  CHECK_EQ_INT(buf[7], 120);         /* lifetime */
  CHECK_EQ_INT(buf[18], 0xff);       /* ::ffff:10.0.1.2 */
  CHECK_EQ_INT(buf[20], 10);
  CHECK_EQ_INT(buf[23], 2);
  CHECK_EQ_INT(buf[24], 0xa0);       /* nonce */
  CHECK_EQ_INT(buf[35], 0xab);
  CHECK_EQ_INT(buf[36], 6);          /* protocol */
  CHECK_EQ_INT(buf[40] << 8 | buf[41], 4000); /* internal port */
  CHECK_EQ_INT(buf[42] << 8 | buf[43], 4000); /* suggested external port */
  CHECK_EQ_INT(buf[54], 0xff);       /* ::ffff:0.0.0.0 */
  CHECK_EQ_INT(nm_pcp_build_map(buf, 59, cip, 120, &m), NM_PCP_EARG);
  CHECK_EQ_INT(nm_pcp_build_announce(buf, sizeof(buf), cip), 24);
  CHECK_EQ_INT(buf[1], 0);
  CHECK_EQ_INT(nm_pcp_build_announce(buf, 23, cip), NM_PCP_EARG);
}

static void parses_and_refuses(void) {
  uint8_t req[NM_PCP_MAP_LEN], ans[1200], cip[16];
  nm_pcp_map m, other;
  nm_pcp_answer a;
  size_t n;

  sample_map(&m);
  nm_pcp_v4mapped(cip, me4);
  nm_pcp_build_map(req, sizeof(req), cip, 120, &m);
  n = answer_of(ans, req, sizeof(req), NM_PCP_SUCCESS, 60, 1234);
  ans[42] = 0x13; /* assigned port 5000 */
  ans[43] = 0x88;
  CHECK_EQ_INT(nm_pcp_parse(ans, n, NM_PCP_OP_MAP, &a), 0);
  CHECK_EQ_INT(a.lifetime, 60);
  CHECK_EQ_INT(a.epoch, 1234);
  CHECK_EQ_INT(a.has_map, 1);
  CHECK_EQ_INT(a.map.ext_port, 5000);
  CHECK_EQ_INT(nm_pcp_answer_matches(&a, &m), 1);
  other = m;
  other.nonce[11] ^= 1;
  CHECK_EQ_INT(nm_pcp_answer_matches(&a, &other), 0);
  other = m;
  other.proto = 17;
  CHECK_EQ_INT(nm_pcp_answer_matches(&a, &other), 0);
  other = m;
  other.int_port = 4001;
  CHECK_EQ_INT(nm_pcp_answer_matches(&a, &other), 0);

  /* lengths */
  CHECK_EQ_INT(nm_pcp_parse(ans, 20, NM_PCP_OP_MAP, &a), NM_PCP_ESHORT);
  CHECK_EQ_INT(nm_pcp_parse(ans, 56, NM_PCP_OP_MAP, &a), NM_PCP_ESHORT); /* success, cut */
  CHECK_EQ_INT(nm_pcp_parse(ans, 62, NM_PCP_OP_MAP, &a), NM_PCP_EALIGN);
  memset(ans + 60, 0, sizeof(ans) - 60);
  CHECK_EQ_INT(nm_pcp_parse(ans, 1104, NM_PCP_OP_MAP, &a), NM_PCP_ELONG);
  /* an option: code 0x80, length 4, data: fine; length 8 past the end: refused */
  ans[60] = 0x80;
  ans[63] = 4;
  CHECK_EQ_INT(nm_pcp_parse(ans, 68, NM_PCP_OP_MAP, &a), 0);
  ans[63] = 8;
  CHECK_EQ_INT(nm_pcp_parse(ans, 68, NM_PCP_OP_MAP, &a), NM_PCP_EOPTION);
  CHECK_EQ_INT(nm_pcp_parse(ans, 64, NM_PCP_OP_MAP, &a), NM_PCP_EOPTION);
  ans[63] = 0;
  CHECK_EQ_INT(nm_pcp_parse(ans, 64, NM_PCP_OP_MAP, &a), 0); /* empty option */

  /* header fields */
  ans[0] = 1;
  CHECK_EQ_INT(nm_pcp_parse(ans, 60, NM_PCP_OP_MAP, &a), NM_PCP_EVERSION);
  ans[0] = 0; /* a NAT-PMP server's "unsupported version" */
  CHECK_EQ_INT(nm_pcp_parse(ans, 8, NM_PCP_OP_MAP, &a), NM_PCP_ENATPMP);
  ans[0] = 2;
  ans[1] = 1; /* R bit clear */
  CHECK_EQ_INT(nm_pcp_parse(ans, 60, NM_PCP_OP_MAP, &a), NM_PCP_ENOTRESP);
  ans[1] = 0x80; /* ANNOUNCE answer where MAP was asked */
  CHECK_EQ_INT(nm_pcp_parse(ans, 60, NM_PCP_OP_MAP, &a), NM_PCP_EOPCODE);
  CHECK_EQ_INT(nm_pcp_parse(ans, 24, NM_PCP_OP_ANNOUNCE, &a), 0);
  ans[1] = 0x81;

  /* an error answer may carry the header only; it then applies to what is in flight */
  ans[3] = NM_PCP_NOT_AUTHORIZED;
  CHECK_EQ_INT(nm_pcp_parse(ans, 24, NM_PCP_OP_MAP, &a), 0);
  CHECK_EQ_INT(a.result, NM_PCP_NOT_AUTHORIZED);
  CHECK_EQ_INT(a.has_map, 0);
  CHECK_EQ_INT(nm_pcp_answer_matches(&a, &m), 1);
  CHECK_EQ_INT(nm_pcp_parse(ans, 40, NM_PCP_OP_MAP, &a), NM_PCP_ESHORT);
  ans[3] = NM_PCP_SUCCESS;
  CHECK_EQ_INT(nm_pcp_parse(ans, 24, NM_PCP_OP_MAP, &a), NM_PCP_ESHORT);
  CHECK_EQ_INT(nm_pcp_parse(NULL, 24, NM_PCP_OP_MAP, &a), NM_PCP_EARG);
}

static void addresses(void) {
  uint8_t a16[16], v4[4];
  nm_pcp_v4mapped(a16, me4);
  CHECK_EQ_INT(nm_pcp_v4_of(a16, v4), 0);
  CHECK(memcmp(v4, me4, 4) == 0);
  a16[0] = 0x20; /* 2000::... is not IPv4-mapped */
  CHECK_EQ_INT(nm_pcp_v4_of(a16, v4), NM_PCP_EADDR);
}

static void epoch_rule(void) {
  const uint64_t S = 1000;
  /* steady: 100 s on both sides */
  CHECK_EQ_INT(nm_pcp_epoch_lost(5000, 0, 5100, 100 * S), 0);
  /* one second back is tolerated, two are not */
  CHECK_EQ_INT(nm_pcp_epoch_lost(5000, 0, 4999, 0), 0);
  CHECK_EQ_INT(nm_pcp_epoch_lost(5000, 0, 4998, 0), 1);
  /* a restart: the server counts from 0 again */
  CHECK_EQ_INT(nm_pcp_epoch_lost(5000, 0, 3, 10 * S), 1);
  /* the server's time ran much slower than ours: it restarted in between */
  CHECK_EQ_INT(nm_pcp_epoch_lost(100, 0, 110, 100 * S), 1);
  /* ... or much faster */
  CHECK_EQ_INT(nm_pcp_epoch_lost(100, 0, 300, 100 * S), 1);
  /* within 2 s + 1/16 either way */
  CHECK_EQ_INT(nm_pcp_epoch_lost(100, 0, 100 + 100 - 8, 100 * S), 0);
  CHECK_EQ_INT(nm_pcp_epoch_lost(100, 0, 100 + 100 + 8, 100 * S), 0);
  CHECK_EQ_INT(nm_pcp_epoch_lost(100, 0, 100 + 100 - 12, 100 * S), 1);
}

static void retransmission_schedule(void) {
  CHECK_EQ_INT(nm_pcp_next_rt_ms(0, 0), 3000);
  CHECK_EQ_INT(nm_pcp_next_rt_ms(0, -100), 2700);
  CHECK_EQ_INT(nm_pcp_next_rt_ms(0, 100), 3300);
  CHECK_EQ_INT(nm_pcp_next_rt_ms(0, 500), 3300);   /* jitter clamped to 10 % */
  CHECK_EQ_INT(nm_pcp_next_rt_ms(3000, 0), 6000);
  CHECK_EQ_INT(nm_pcp_next_rt_ms(600000, 0), 1024000); /* MRT */
  CHECK_EQ_INT(nm_pcp_next_rt_ms(1024000, 100), 1126400);
}

static void names(void) {
  CHECK_STREQ(nm_pcp_result_name(NM_PCP_NO_RESOURCES), "NO_RESOURCES");
  CHECK_STREQ(nm_pcp_result_name(200), "unknown result");
  CHECK(strcmp(nm_pcp_strerror(NM_PCP_ENONCE), "unknown PCP error") != 0);
}

int main(void) {
  builds_map_request();
  parses_and_refuses();
  addresses();
  epoch_rule();
  retransmission_schedule();
  names();
  NAT_TEST_DONE("nat_pcp_wire");
}
