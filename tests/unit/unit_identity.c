/* nm_identity: the key file's life (created private, reloaded the same, refused when
 * unsafe or corrupt), the names derived from the key, and Ed25519 signatures checked
 * against RFC 8032's published vector. */
#include "nmt.h"
#include "nm_error.h"
#include "nm_identity.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

static char tmp_root[] = "/tmp/nm_identity_XXXXXX";

static void rm_rf(const char *path) {
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", path);
}

static void write_file(const char *path, const char *data, size_t len, mode_t mode) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
  if (fd < 0 || write(fd, data, len) != (ssize_t)len) fprintf(stderr, "cannot write %s\n", path);
  if (fd >= 0) close(fd);
  chmod(path, mode);
}

static mode_t mode_of(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 ? st.st_mode & 07777 : (mode_t)-1;
}

static int is_hex(const char *s, size_t n) {
  if (strlen(s) != n) return 0;
  for (size_t i = 0; i < n; i++)
    if (!strchr("0123456789abcdef", s[i])) return 0;
  return 1;
}

static void test_create_and_reload(void) {
  char dir[300], key[320];
  /* Missing parents are created too: the default dir is ~/.local/state/natmesh/<program>. */
  snprintf(dir, sizeof dir, "%s/create/deep/servant", tmp_root);
  snprintf(key, sizeof key, "%s/key.pem", dir);
  nm_identity a, b;
  char err[400];
  NMT_EQ_INT(nm_identity_load_or_create(dir, &a, err, sizeof err), 0);
  NMT_EQ_STR(err, "");
  NMT_EQ_INT(mode_of(dir), 0700);
  NMT_EQ_INT(mode_of(key), 0600);
  NMT_CHECK(is_hex(nm_identity_fingerprint(&a)->hex, 64));
  NMT_CHECK(is_hex(nm_identity_id(&a), NM_ID_LEN));
  NMT_CHECK(strncmp(nm_identity_id(&a), a.fp.hex, NM_ID_LEN) == 0);
  /* The fingerprint is the SHA-256 of the raw public key the identity carries. */
  nm_fingerprint fp;
  nm_fingerprint_of_pubkey(a.pub, &fp);
  NMT_CHECK(nm_fingerprint_equal(&fp, &a.fp));
  /* PKCS#8 PEM, unencrypted, and no temp file left behind. */
  FILE *f = fopen(key, "r");
  char line[64] = "";
  if (f) {
    if (!fgets(line, sizeof line, f)) line[0] = 0;
    fclose(f);
  }
  NMT_EQ_STR(line, "-----BEGIN PRIVATE KEY-----\n");
  char tmp[340];
  snprintf(tmp, sizeof tmp, "%s/key.pem.tmp.%ld", dir, (long)getpid());
  NMT_CHECK(access(tmp, F_OK) != 0);

  NMT_EQ_INT(nm_identity_load_or_create(dir, &b, err, sizeof err), 0);
  NMT_EQ_STR(nm_identity_id(&b), nm_identity_id(&a));
  NMT_CHECK(nm_fingerprint_equal(&a.fp, &b.fp));
  NMT_CHECK(memcmp(a.pub, b.pub, NM_PUBKEY_LEN) == 0);
  /* A key loaded from the file signs what the created one verifies. */
  uint8_t sig[NM_SIG_LEN];
  NMT_EQ_INT(nm_identity_sign(&b, "x", 1, sig), 0);
  NMT_EQ_INT(nm_pubkey_verify(a.pub, "x", 1, sig), 0);
  nm_identity_close(&a);
  nm_identity_close(&b);
  NMT_CHECK(a.key == NULL);

  /* Another directory, another identity. */
  char other[300];
  snprintf(other, sizeof other, "%s/other", tmp_root);
  NMT_EQ_INT(nm_identity_load_or_create(other, &a, err, sizeof err), 0);
  NMT_CHECK(!nm_fingerprint_equal(&a.fp, &fp));
  nm_identity_close(&a);
}

static void test_refuses_open_key(void) {
  char dir[300], key[320], err[400];
  snprintf(dir, sizeof dir, "%s/open", tmp_root);
  snprintf(key, sizeof key, "%s/key.pem", dir);
  nm_identity id;
  NMT_EQ_INT(nm_identity_load_or_create(dir, &id, err, sizeof err), 0);
  nm_identity_close(&id);
  chmod(key, 0644);
  NMT_EQ_INT(nm_identity_load_or_create(dir, &id, err, sizeof err), NM_ECONFIG);
  NMT_HAS(err, key);
  NMT_HAS(err, "open to group or others (mode 0644)");
  NMT_HAS(err, "chmod 600");
  NMT_CHECK(id.key == NULL);
  chmod(key, 0640);
  NMT_EQ_INT(nm_identity_load_or_create(dir, &id, err, sizeof err), NM_ECONFIG);
  chmod(key, 0600);
  /* The folder too: a key in a folder others can enter or list is refused. */
  chmod(dir, 0755);
  NMT_EQ_INT(nm_identity_load_or_create(dir, &id, err, sizeof err), NM_ECONFIG);
  NMT_HAS(err, "state directory");
  NMT_HAS(err, "chmod 700");
  chmod(dir, 0700);
  NMT_EQ_INT(nm_identity_load_or_create(dir, &id, err, sizeof err), 0);
  nm_identity_close(&id);
}

static void test_refuses_foreign_owner(void) {
  if (geteuid() != 0) return; /* only root can give a file away */
  char dir[300], key[320], err[400];
  snprintf(dir, sizeof dir, "%s/foreign", tmp_root);
  snprintf(key, sizeof key, "%s/key.pem", dir);
  nm_identity id;
  NMT_EQ_INT(nm_identity_load_or_create(dir, &id, err, sizeof err), 0);
  nm_identity_close(&id);
  NMT_EQ_INT(chown(key, 65534, 65534), 0);
  NMT_EQ_INT(nm_identity_load_or_create(dir, &id, err, sizeof err), NM_ECONFIG);
  NMT_HAS(err, "belongs to uid 65534");
  NMT_EQ_INT(chown(key, 0, 0), 0);
  NMT_EQ_INT(chown(dir, 65534, 65534), 0);
  NMT_EQ_INT(nm_identity_load_or_create(dir, &id, err, sizeof err), NM_ECONFIG);
  NMT_HAS(err, "state directory");
}

static void test_refuses_bad_key_files(void) {
  char dir[300], key[320], err[400];
  nm_identity id;
  snprintf(dir, sizeof dir, "%s/corrupt", tmp_root);
  snprintf(key, sizeof key, "%s/key.pem", dir);
  mkdir(dir, 0700);

  write_file(key, "not a key at all\n", 17, 0600);
  NMT_EQ_INT(nm_identity_load_or_create(dir, &id, err, sizeof err), NM_EKEY);
  NMT_HAS(err, "is not a PEM private key");
  NMT_HAS(err, "changes this node's id");
  /* The bad file is left for the operator: never silently replaced by a new identity. */
  NMT_EQ_INT(mode_of(key), 0600);

  write_file(key, "", 0, 0600);
  NMT_EQ_INT(nm_identity_load_or_create(dir, &id, err, sizeof err), NM_EKEY);

  /* A truncated PEM: the first half of a real key file. */
  nm_identity real;
  NMT_EQ_INT(nm_identity_generate(&real), 0);
  BIO *mem = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(mem, real.key, NULL, NULL, 0, NULL, NULL);
  char *pem;
  long pemlen = BIO_get_mem_data(mem, &pem);
  write_file(key, pem, (size_t)pemlen / 2, 0600);
  NMT_EQ_INT(nm_identity_load_or_create(dir, &id, err, sizeof err), NM_EKEY);
  BIO_free(mem);

  /* Encrypted: refused without prompting on a terminal. */
  mem = BIO_new(BIO_s_mem());
  PEM_write_bio_PKCS8PrivateKey(mem, real.key, EVP_aes_256_cbc(), "secret", 6, NULL, NULL);
  pemlen = BIO_get_mem_data(mem, &pem);
  write_file(key, pem, (size_t)pemlen, 0600);
  NMT_EQ_INT(nm_identity_load_or_create(dir, &id, err, sizeof err), NM_EKEY);
  BIO_free(mem);
  nm_identity_close(&real);

  /* A valid key of another type. */
  EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
  mem = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(mem, ec, NULL, NULL, 0, NULL, NULL);
  pemlen = BIO_get_mem_data(mem, &pem);
  write_file(key, pem, (size_t)pemlen, 0600);
  NMT_EQ_INT(nm_identity_load_or_create(dir, &id, err, sizeof err), NM_EKEY);
  NMT_HAS(err, "holds a key of type EC, not Ed25519");
  BIO_free(mem);
  EVP_PKEY_free(ec);

  /* Not a regular file. */
  unlink(key);
  mkdir(key, 0700);
  NMT_EQ_INT(nm_identity_load_or_create(dir, &id, err, sizeof err), NM_EKEY);
  NMT_HAS(err, "not a regular file");
  rmdir(key);

  /* A state "directory" that is a file. */
  char notdir[320];
  snprintf(notdir, sizeof notdir, "%s/plainfile", tmp_root);
  write_file(notdir, "x", 1, 0600);
  NMT_CHECK(nm_identity_load_or_create(notdir, &id, err, sizeof err) < 0);
  NMT_HAS(err, notdir);
  NMT_CHECK(nm_identity_load_or_create("", &id, err, sizeof err) < 0);
}

/* RFC 8032 section 7.1, TEST 1: the empty message. */
static void test_rfc8032_vector(void) {
  static const char *secret = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
  static const char *public = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
  static const char *signature =
      "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701c"
      "f9b46bd25bf5f0595bbe24655141438e7a100b";
  uint8_t sk[32], pk[32], want[64];
  NMT_EQ_INT(nm_pubkey_from_hex(secret, sk), 0);
  NMT_EQ_INT(nm_pubkey_from_hex(public, pk), 0);
  for (int i = 0; i < 64; i++) {
    unsigned v;
    sscanf(signature + 2 * i, "%2x", &v);
    want[i] = (uint8_t)v;
  }
  nm_identity id;
  memset(&id, 0, sizeof id);
  id.key = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, sk, sizeof sk);
  NMT_CHECK(id.key != NULL);
  NMT_EQ_INT(nm_pubkey_of_evp(id.key, id.pub, &id.fp), 0);
  NMT_CHECK(memcmp(id.pub, pk, 32) == 0);
  /* sha256(pk), computed independently (python3 hashlib). */
  NMT_EQ_STR(id.fp.hex, "21fe31dfa154a261626bf854046fd2271b7bed4b6abe45aa58877ef47f9721b9");
  char node_id[NM_ID_LEN + 1];
  nm_fingerprint_id(&id.fp, node_id);
  NMT_CHECK(strncmp(node_id, "21fe31dfa154a261626bf854046fd2271b7bed4b6abe45aa58877ef47f9721b9",
                    NM_ID_LEN) == 0);
  uint8_t sig[NM_SIG_LEN];
  NMT_EQ_INT(nm_identity_sign(&id, "", 0, sig), 0);
  NMT_CHECK(memcmp(sig, want, 64) == 0);
  NMT_EQ_INT(nm_pubkey_verify(pk, "", 0, want), 0);
  nm_identity_close(&id);
}

static void test_sign_verify(void) {
  nm_identity a, b;
  NMT_EQ_INT(nm_identity_generate(&a), 0);
  NMT_EQ_INT(nm_identity_generate(&b), 0);
  const char msg[] = "origin=0123456789abcdef seq=42 text=hello";
  uint8_t sig[NM_SIG_LEN];
  NMT_EQ_INT(nm_identity_sign(&a, msg, sizeof msg - 1, sig), 0);
  NMT_EQ_INT(nm_pubkey_verify(a.pub, msg, sizeof msg - 1, sig), 0);
  /* Every single flipped bit of the signature fails. */
  int all_fail = 1;
  for (int bit = 0; bit < NM_SIG_LEN * 8; bit++) {
    sig[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    if (nm_pubkey_verify(a.pub, msg, sizeof msg - 1, sig) != NM_ESIG) all_fail = 0;
    sig[bit / 8] ^= (uint8_t)(1u << (bit % 8));
  }
  NMT_CHECK(all_fail);
  /* A flipped bit of the message, a shorter message, another key. */
  char altered[sizeof msg];
  memcpy(altered, msg, sizeof msg);
  altered[7] ^= 1;
  NMT_EQ_INT(nm_pubkey_verify(a.pub, altered, sizeof msg - 1, sig), NM_ESIG);
  NMT_EQ_INT(nm_pubkey_verify(a.pub, msg, sizeof msg - 2, sig), NM_ESIG);
  NMT_EQ_INT(nm_pubkey_verify(b.pub, msg, sizeof msg - 1, sig), NM_ESIG);
  NMT_EQ_INT(nm_pubkey_verify(a.pub, msg, sizeof msg - 1, sig), 0);
  nm_identity_close(&a);
  nm_identity_close(&b);
}

static void test_hex_helpers(void) {
  nm_identity a;
  NMT_EQ_INT(nm_identity_generate(&a), 0);
  char hex[65];
  nm_pubkey_to_hex(a.pub, hex);
  NMT_CHECK(is_hex(hex, 64));
  uint8_t back[32];
  NMT_EQ_INT(nm_pubkey_from_hex(hex, back), 0);
  NMT_CHECK(memcmp(back, a.pub, 32) == 0);
  NMT_EQ_INT(nm_pubkey_from_hex("abc", back), -EINVAL);
  hex[10] = 'g';
  NMT_EQ_INT(nm_pubkey_from_hex(hex, back), -EINVAL);
  NMT_CHECK(memcmp(back, a.pub, 32) == 0); /* untouched on failure */

  nm_fingerprint fp;
  char upper[65];
  for (int i = 0; i < 64; i++) upper[i] = (char)toupper((unsigned char)a.fp.hex[i]);
  upper[64] = 0;
  NMT_EQ_INT(nm_fingerprint_parse(upper, &fp), 0);
  NMT_EQ_STR(nm_fingerprint_str(&fp), a.fp.hex);
  NMT_CHECK(nm_fingerprint_equal(&fp, &a.fp));
  upper[63] = 0;
  NMT_EQ_INT(nm_fingerprint_parse(upper, &fp), -EINVAL);
  NMT_EQ_INT(nm_fingerprint_parse(NULL, &fp), -EINVAL);
  char spaced[66];
  snprintf(spaced, sizeof spaced, " %s", a.fp.hex);
  NMT_EQ_INT(nm_fingerprint_parse(spaced, &fp), -EINVAL);
  char plus[66];
  snprintf(plus, sizeof plus, "%s0", a.fp.hex);
  NMT_EQ_INT(nm_fingerprint_parse(plus, &fp), -EINVAL);
  nm_identity_close(&a);
}

static void test_default_dir(void) {
  char out[256];
  char *saved_home = getenv("HOME") ? strdup(getenv("HOME")) : NULL;
  unsetenv("STATE_DIRECTORY");
  unsetenv("XDG_STATE_HOME");
  setenv("HOME", "/home/alice", 1);
  NMT_EQ_INT(nm_identity_default_dir(out, sizeof out, "servant"), 0);
  NMT_EQ_STR(out, "/home/alice/.local/state/natmesh/servant");
  setenv("XDG_STATE_HOME", "relative/ignored", 1);
  NMT_EQ_INT(nm_identity_default_dir(out, sizeof out, "servant"), 0);
  NMT_EQ_STR(out, "/home/alice/.local/state/natmesh/servant");
  setenv("XDG_STATE_HOME", "/xdg", 1);
  NMT_EQ_INT(nm_identity_default_dir(out, sizeof out, "manager"), 0);
  NMT_EQ_STR(out, "/xdg/natmesh/manager");
  setenv("STATE_DIRECTORY", "/var/lib/natmesh-relay:/var/lib/other", 1);
  NMT_EQ_INT(nm_identity_default_dir(out, sizeof out, "relay"), 0);
  NMT_EQ_STR(out, "/var/lib/natmesh-relay");
  unsetenv("STATE_DIRECTORY");
  unsetenv("XDG_STATE_HOME");
  unsetenv("HOME");
  NMT_EQ_INT(nm_identity_default_dir(out, sizeof out, "manager"), 0);
  if (geteuid() == 0) NMT_EQ_STR(out, "/var/lib/natmesh/manager");
  else NMT_HAS(out, "/.local/state/natmesh/manager");
  setenv("HOME", "/home/alice", 1);
  NMT_EQ_INT(nm_identity_default_dir(out, 20, "servant"), -ENAMETOOLONG);
  NMT_EQ_INT(nm_identity_default_dir(out, sizeof out, "../x"), -EINVAL);
  NMT_EQ_INT(nm_identity_default_dir(out, sizeof out, ""), -EINVAL);
  if (saved_home) setenv("HOME", saved_home, 1);
  else unsetenv("HOME");
  free(saved_home);
}

int main(void) {
  if (!mkdtemp(tmp_root)) {
    perror("mkdtemp");
    return 1;
  }
  NMT_RUN(test_create_and_reload);
  NMT_RUN(test_refuses_open_key);
  NMT_RUN(test_refuses_foreign_owner);
  NMT_RUN(test_refuses_bad_key_files);
  NMT_RUN(test_rfc8032_vector);
  NMT_RUN(test_sign_verify);
  NMT_RUN(test_hex_helpers);
  NMT_RUN(test_default_dir);
  rm_rf(tmp_root);
  return nmt_done();
}
