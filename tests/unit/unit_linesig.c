/* nm_linesig (signed chat lines) and nm_hex (the strict hex it travels in). */
#include "nm_hex.h"
#include "nm_linesig.h"
#include "nmt.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/evp.h>

static EVP_PKEY *keygen(void) { return EVP_PKEY_Q_keygen(NULL, NULL, "ED25519"); }

static void public_of(EVP_PKEY *k, unsigned char pub[NM_ED25519_PUBLIC_LEN]) {
  size_t len = NM_ED25519_PUBLIC_LEN;
  NMT_CHECK(EVP_PKEY_get_raw_public_key(k, pub, &len) == 1 && len == NM_ED25519_PUBLIC_LEN);
}

static nm_linesig_line line_of(const char *origin, uint64_t epoch, uint64_t seq,
                               const char *text) {
  nm_linesig_line l = {origin, epoch, seq, text, text ? strlen(text) : 0};
  return l;
}

static void test_hex(void) {
  unsigned char in[4] = {0x00, 0x9f, 0xa0, 0xff}, out[4];
  char s[9], small[8];
  NMT_EQ_INT(nm_hex_encode(in, 4, s, sizeof s), 0);
  NMT_EQ_STR(s, "009fa0ff");
  NMT_EQ_INT(nm_hex_encode(in, 4, small, sizeof small), -EINVAL); /* no room for the NUL */
  NMT_EQ_INT(nm_hex_encode(in, 0, small, 1), 0);
  NMT_EQ_STR(small, "");
  NMT_EQ_INT(nm_hex_decode("009fa0ff", out, 4), 0);
  NMT_CHECK(memcmp(in, out, 4) == 0);
  NMT_EQ_INT(nm_hex_decode("009FA0FF", out, 4), -EINVAL); /* one spelling: lower case */
  NMT_EQ_INT(nm_hex_decode("009fa0f", out, 4), -EINVAL);
  NMT_EQ_INT(nm_hex_decode("009fa0ff0", out, 4), -EINVAL);
  NMT_EQ_INT(nm_hex_decode("009fa0fg", out, 4), -EINVAL);
  NMT_EQ_INT(nm_hex_decode(" 09fa0ff", out, 4), -EINVAL);
  NMT_EQ_INT(nm_hex_decode("", out, 4), -EINVAL);
  NMT_EQ_INT(nm_hex_decode(NULL, out, 4), -EINVAL);
  NMT_CHECK(nm_hex_valid("0a", 2));
  NMT_CHECK(!nm_hex_valid("0a", 3));
  NMT_CHECK(!nm_hex_valid("0a0", 2));
}

/* The canonical bytes are the protocol: pinned here byte for byte. */
static void test_canonical_bytes(void) {
  unsigned char buf[NM_LINESIG_CANONICAL_MAX];
  char hex[2 * sizeof buf + 1];
  size_t n = 0;
  nm_linesig_line l = line_of("0123456789abcdef", 2, 42, "hello, world");
  NMT_EQ_INT(nm_linesig_canonical(&l, buf, sizeof buf, &n), 0);
  nm_hex_encode(buf, n, hex, sizeof hex);
  NMT_EQ_STR(hex, "0000000f" "6e61746d6573682d6c696e652d7631"   /* u32 15, "natmesh-line-v1" */
                  "00000010" "30313233343536373839616263646566" /* u32 16, the origin */
                  "0000000000000002" "000000000000002a"       /* u64 epoch 2, u64 seq 42 */
                  "0000000c" "68656c6c6f2c20776f726c64");      /* u32 12, the text */
  /* Too small a buffer is refused, not cut. */
  NMT_EQ_INT(nm_linesig_canonical(&l, buf, n - 1, &n), -EINVAL);
}

/* A known answer: RFC 8032's first test key signing the line above, computed apart from
 * natmesh (Python's cryptography package over the canonical bytes). */
static void test_known_answer(void) {
  unsigned char seed[32], sig[NM_LINESIG_LEN], pub[NM_ED25519_PUBLIC_LEN];
  char text[NM_LINESIG_HEX_LEN + 1];
  nm_hex_decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60", seed, 32);
  nm_hex_decode("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", pub, 32);
  EVP_PKEY *k = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, sizeof seed);
  NMT_CHECK(k != NULL);
  nm_linesig_line l = line_of("0123456789abcdef", 2, 42, "hello, world");
  NMT_EQ_INT(nm_linesig_sign(k, &l, sig), 0);
  nm_linesig_encode(sig, text);
  NMT_EQ_STR(text, "c755e969f0bddb6fcf499b5d798db90f69729051f3cdf2a77715ec0010f9c432"
                   "7266400566cd47e5b6841955931a16ffc56def26ad31f4562fc7e825723e8704");
  NMT_EQ_INT(nm_linesig_verify(pub, &l, sig), 0);
  EVP_PKEY_free(k);
}

static void test_round_trip(void) {
  EVP_PKEY *k = keygen();
  unsigned char pub[NM_ED25519_PUBLIC_LEN], sig[NM_LINESIG_LEN], back[NM_LINESIG_LEN];
  char text[NM_LINESIG_HEX_LEN + 1];
  public_of(k, pub);
  nm_linesig_line l = line_of("a1b2c3d4e5f60708", 1, 1, "hi there");
  NMT_EQ_INT(nm_linesig_sign(k, &l, sig), 0);
  NMT_EQ_INT(nm_linesig_verify(pub, &l, sig), 0);
  nm_linesig_encode(sig, text);
  NMT_EQ_INT(strlen(text), NM_LINESIG_HEX_LEN);
  NMT_EQ_INT(nm_linesig_decode(text, back), 0);
  NMT_CHECK(memcmp(sig, back, sizeof sig) == 0);
  NMT_EQ_INT(nm_linesig_verify(pub, &l, back), 0);
  /* empty text, and the largest line */
  static char big[NM_LINESIG_TEXT_MAX + 1];
  memset(big, 'x', NM_LINESIG_TEXT_MAX);
  nm_linesig_line e = {"a1b2c3d4e5f60708", 0, 7, NULL, 0};
  NMT_EQ_INT(nm_linesig_sign(k, &e, sig), 0);
  NMT_EQ_INT(nm_linesig_verify(pub, &e, sig), 0);
  nm_linesig_line b = {"a1b2c3d4e5f60708", UINT64_MAX, UINT64_MAX, big, NM_LINESIG_TEXT_MAX};
  NMT_EQ_INT(nm_linesig_sign(k, &b, sig), 0);
  NMT_EQ_INT(nm_linesig_verify(pub, &b, sig), 0);
  EVP_PKEY_free(k);
}

static void test_any_change_fails(void) {
  EVP_PKEY *k = keygen();
  unsigned char pub[NM_ED25519_PUBLIC_LEN], sig[NM_LINESIG_LEN];
  public_of(k, pub);
  nm_linesig_line l = line_of("a1b2c3d4e5f60708", 3, 10, "pay bob 10");
  NMT_EQ_INT(nm_linesig_sign(k, &l, sig), 0);
  nm_linesig_line m = l;
  m.origin = "a1b2c3d4e5f60709";
  NMT_EQ_INT(nm_linesig_verify(pub, &m, sig), -EBADMSG);
  m = l, m.epoch = 4;
  NMT_EQ_INT(nm_linesig_verify(pub, &m, sig), -EBADMSG);
  m = l, m.seq = 11;
  NMT_EQ_INT(nm_linesig_verify(pub, &m, sig), -EBADMSG);
  m = l, m.text = "pay bob 90";
  NMT_EQ_INT(nm_linesig_verify(pub, &m, sig), -EBADMSG);
  m = l, m.text_len = l.text_len - 1; /* truncated text */
  NMT_EQ_INT(nm_linesig_verify(pub, &m, sig), -EBADMSG);
  m = l, m.text = "pay bob 10!", m.text_len = l.text_len + 1; /* extended text */
  NMT_EQ_INT(nm_linesig_verify(pub, &m, sig), -EBADMSG);
  /* every bit of the signature matters */
  int all = 1;
  for (size_t bit = 0; bit < 8 * NM_LINESIG_LEN; bit++) {
    sig[bit / 8] ^= (unsigned char)(1u << (bit % 8));
    all &= nm_linesig_verify(pub, &l, sig) == -EBADMSG;
    sig[bit / 8] ^= (unsigned char)(1u << (bit % 8));
  }
  NMT_CHECK(all);
  NMT_EQ_INT(nm_linesig_verify(pub, &l, sig), 0);
  /* a failed verification leaves nothing on OpenSSL's error queue (SSL_get_error reads it) */
  m = l, m.seq = 12;
  nm_linesig_verify(pub, &m, sig);
  NMT_EQ_INT(ERR_peek_error(), 0);
  EVP_PKEY_free(k);
}

/* Field boundaries are part of the signed bytes. */
static void test_no_ambiguity(void) {
  EVP_PKEY *k = keygen();
  unsigned char pub[NM_ED25519_PUBLIC_LEN], sig[NM_LINESIG_LEN];
  unsigned char b1[NM_LINESIG_CANONICAL_MAX], b2[NM_LINESIG_CANONICAL_MAX];
  size_t n1, n2;
  public_of(k, pub);
  nm_linesig_line ab_c = line_of("ab", 1, 1, "c"), a_bc = line_of("a", 1, 1, "bc");
  NMT_EQ_INT(nm_linesig_canonical(&ab_c, b1, sizeof b1, &n1), 0);
  NMT_EQ_INT(nm_linesig_canonical(&a_bc, b2, sizeof b2, &n2), 0);
  NMT_CHECK(n1 != n2 || memcmp(b1, b2, n1) != 0);
  NMT_EQ_INT(nm_linesig_sign(k, &ab_c, sig), 0);
  NMT_EQ_INT(nm_linesig_verify(pub, &ab_c, sig), 0);
  NMT_EQ_INT(nm_linesig_verify(pub, &a_bc, sig), -EBADMSG);
  /* a digit moved between seq and text: "1" + "2x" vs "12" + "x" cannot collide either,
   * the integers being fixed-width */
  nm_linesig_line s1 = line_of("o", 1, 1, "2x"), s2 = line_of("o", 1, 12, "x");
  NMT_EQ_INT(nm_linesig_sign(k, &s1, sig), 0);
  NMT_EQ_INT(nm_linesig_verify(pub, &s2, sig), -EBADMSG);
  EVP_PKEY_free(k);
}

static void test_wrong_key(void) {
  EVP_PKEY *alice = keygen(), *mallory = keygen();
  unsigned char pub_alice[NM_ED25519_PUBLIC_LEN], pub_mallory[NM_ED25519_PUBLIC_LEN];
  unsigned char sig[NM_LINESIG_LEN], junk[NM_ED25519_PUBLIC_LEN];
  public_of(alice, pub_alice);
  public_of(mallory, pub_mallory);
  /* mallory signs a line claiming alice's origin: alice's key does not verify it */
  nm_linesig_line l = line_of("a11ce00000000000", 1, 5, "I am alice");
  NMT_EQ_INT(nm_linesig_sign(mallory, &l, sig), 0);
  NMT_EQ_INT(nm_linesig_verify(pub_alice, &l, sig), -EBADMSG);
  NMT_EQ_INT(nm_linesig_verify(pub_mallory, &l, sig), 0);
  /* 32 bytes that are no key at all */
  memset(junk, 0xff, sizeof junk);
  NMT_EQ_INT(nm_linesig_verify(junk, &l, sig), -EBADMSG);
  NMT_EQ_INT(ERR_peek_error(), 0);
  EVP_PKEY_free(alice);
  EVP_PKEY_free(mallory);
}

static void test_refused_inputs(void) {
  EVP_PKEY *k = keygen(), *x = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
  unsigned char pub[NM_ED25519_PUBLIC_LEN], sig[NM_LINESIG_LEN];
  char origin[NM_LINESIG_ORIGIN_MAX + 2];
  static char big[NM_LINESIG_TEXT_MAX + 2];
  public_of(k, pub);
  memset(origin, 'o', sizeof origin - 1);
  origin[sizeof origin - 1] = 0;
  nm_linesig_line l = line_of(origin, 1, 1, "t"); /* 65-byte origin */
  NMT_EQ_INT(nm_linesig_sign(k, &l, sig), -EINVAL);
  NMT_EQ_INT(nm_linesig_verify(pub, &l, sig), -EINVAL);
  origin[NM_LINESIG_ORIGIN_MAX] = 0;
  NMT_EQ_INT(nm_linesig_sign(k, &l, sig), 0); /* 64 bytes: fine */
  l = line_of("", 1, 1, "t");
  NMT_EQ_INT(nm_linesig_sign(k, &l, sig), -EINVAL);
  l = line_of(NULL, 1, 1, "t");
  NMT_EQ_INT(nm_linesig_sign(k, &l, sig), -EINVAL);
  memset(big, 'x', NM_LINESIG_TEXT_MAX + 1);
  l = line_of("o", 1, 1, big); /* 4,097 bytes */
  NMT_EQ_INT(nm_linesig_sign(k, &l, sig), -EINVAL);
  NMT_EQ_INT(nm_linesig_verify(pub, &l, sig), -EINVAL);
  nm_linesig_line nul = {"o", 1, 1, NULL, 3};
  NMT_EQ_INT(nm_linesig_sign(k, &nul, sig), -EINVAL);
  /* not an Ed25519 key; a public key alone cannot sign */
  l = line_of("o", 1, 1, "t");
  NMT_EQ_INT(nm_linesig_sign(x, &l, sig), -EINVAL);
  NMT_EQ_INT(nm_linesig_sign(NULL, &l, sig), -EINVAL);
  EVP_PKEY *pubonly = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, sizeof pub);
  NMT_EQ_INT(nm_linesig_sign(pubonly, &l, sig), -EINVAL);
  NMT_EQ_INT(ERR_peek_error(), 0);
  EVP_PKEY_free(pubonly);
  EVP_PKEY_free(k);
  EVP_PKEY_free(x);
}

static void test_malformed_signature_text(void) {
  unsigned char sig[NM_LINESIG_LEN];
  char s[NM_LINESIG_HEX_LEN + 2];
  memset(s, 'a', NM_LINESIG_HEX_LEN);
  s[NM_LINESIG_HEX_LEN] = 0;
  NMT_EQ_INT(nm_linesig_decode(s, sig), 0);
  s[NM_LINESIG_HEX_LEN - 1] = 0; /* 127 characters */
  NMT_EQ_INT(nm_linesig_decode(s, sig), -EINVAL);
  s[NM_LINESIG_HEX_LEN - 1] = 'a', s[NM_LINESIG_HEX_LEN] = 'a', s[NM_LINESIG_HEX_LEN + 1] = 0;
  NMT_EQ_INT(nm_linesig_decode(s, sig), -EINVAL); /* 129 */
  s[NM_LINESIG_HEX_LEN] = 0;
  s[5] = 'A';
  NMT_EQ_INT(nm_linesig_decode(s, sig), -EINVAL); /* upper case */
  s[5] = 'g';
  NMT_EQ_INT(nm_linesig_decode(s, sig), -EINVAL);
  s[5] = ' ';
  NMT_EQ_INT(nm_linesig_decode(s, sig), -EINVAL);
  s[5] = '=';
  NMT_EQ_INT(nm_linesig_decode(s, sig), -EINVAL); /* not base64 either */
  NMT_EQ_INT(nm_linesig_decode("", sig), -EINVAL);
  NMT_EQ_INT(nm_linesig_decode(NULL, sig), -EINVAL);
}

int main(void) {
  NMT_RUN(test_hex);
  NMT_RUN(test_canonical_bytes);
  NMT_RUN(test_known_answer);
  NMT_RUN(test_round_trip);
  NMT_RUN(test_any_change_fails);
  NMT_RUN(test_no_ambiguity);
  NMT_RUN(test_wrong_key);
  NMT_RUN(test_refused_inputs);
  NMT_RUN(test_malformed_signature_text);
  return nmt_done();
}
