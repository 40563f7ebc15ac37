/* nm_xml: the one XML entry point, and how it refuses hostile documents. */
#include "nm_error.h"
#include "nm_xml.h"
#include "nmt.h"

#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static int parse(const char *s, xmlDoc **doc, char *err, size_t errlen) {
  return nm_xml_parse(s, strlen(s), doc, err, errlen);
}

/* Expects the document refused with code want; the reason must not be empty. */
static void expect_refused(const char *what, const char *s, size_t len, int want) {
  xmlDoc *doc = (xmlDoc *)1;
  char err[400] = "";
  int rc = nm_xml_parse(s, len, &doc, err, sizeof err);
  if (rc != want) fprintf(stderr, "       case %s: rc %d (%s)\n", what, rc, err);
  NMT_EQ_INT(rc, want);
  NMT_CHECK(doc == NULL);
  NMT_CHECK(err[0] != 0);
  if (doc && doc != (xmlDoc *)1) xmlFreeDoc(doc);
}

static void test_well_formed_and_accessors(void) {
  xmlDoc *doc;
  char err[200];
  const char *s = "<hello id=\"0123456789abcdef\" port=\"4001\" sp=\" 7 \" neg=\"-1\" "
                  "big=\"70000\" word=\"x1\"><name>alice</name><empty/></hello>";
  NMT_EQ_INT(parse(s, &doc, err, sizeof err), 0);
  xmlNode *root = xmlDocGetRootElement(doc);
  NMT_EQ_STR((const char *)root->name, "hello");
  NMT_EQ_STR(nm_xml_attr(root, "id"), "0123456789abcdef");
  NMT_CHECK(nm_xml_attr(root, "nope") == NULL);
  unsigned v = 0;
  NMT_EQ_INT(nm_xml_attr_uint(root, "port", 1, 65535, &v), 0);
  NMT_EQ_INT(v, 4001);
  NMT_EQ_INT(nm_xml_attr_uint(root, "sp", 0, 10, &v), 0);
  NMT_EQ_INT(v, 7);
  NMT_EQ_INT(nm_xml_attr_uint(root, "neg", 0, 10, &v), -EINVAL);
  NMT_EQ_INT(nm_xml_attr_uint(root, "big", 0, 65535, &v), -ERANGE);
  NMT_EQ_INT(nm_xml_attr_uint(root, "port", 5000, 65535, &v), -ERANGE);
  NMT_EQ_INT(nm_xml_attr_uint(root, "word", 0, 10, &v), -EINVAL);
  NMT_EQ_INT(nm_xml_attr_uint(root, "nope", 0, 10, &v), -ENOENT);
  NMT_EQ_STR(nm_xml_child_text(root, "name"), "alice");
  NMT_EQ_STR(nm_xml_child_text(root, "empty"), "");
  NMT_CHECK(nm_xml_child_text(root, "missing") == NULL);
  NMT_CHECK(nm_xml_child(root, "name") != NULL);
  NMT_CHECK(nm_xml_child(NULL, "name") == NULL);
  NMT_CHECK(nm_xml_attr(NULL, "id") == NULL);
  xmlFreeDoc(doc);
}

static void test_dump_round_trip(void) {
  xmlDoc *doc;
  char err[200];
  NMT_EQ_INT(parse("<a x=\"1&amp;2\"><b>t&lt;</b></a>", &doc, err, sizeof err), 0);
  char *out;
  size_t len;
  NMT_EQ_INT(nm_xml_dump(doc, &out, &len), 0);
  NMT_EQ_INT(strlen(out), len);
  xmlFreeDoc(doc);
  NMT_EQ_INT(nm_xml_parse(out, len, &doc, err, sizeof err), 0);
  NMT_EQ_STR(nm_xml_attr(xmlDocGetRootElement(doc), "x"), "1&2");
  NMT_EQ_STR(nm_xml_child_text(xmlDocGetRootElement(doc), "b"), "t<");
  xmlFreeDoc(doc);
  free(out);
}

static void test_doctype_refused(void) {
  const char *doctype = "<?xml version=\"1.0\"?><!DOCTYPE peers><peers version=\"1\"/>";
  expect_refused("doctype", doctype, strlen(doctype), NM_EXML_HOSTILE);
  const char *lower = "<!doctype peers><peers version=\"1\"/>";
  expect_refused("lowercase doctype", lower, strlen(lower), NM_EXML_HOSTILE);
  const char *entity_only = "<peers><!ENTITY x \"y\"></peers>";
  expect_refused("stray ENTITY", entity_only, strlen(entity_only), NM_EXML_HOSTILE);
}

static void test_xxe_refused(void) {
  const char *xxe = "<?xml version=\"1.0\"?>\n"
                    "<!DOCTYPE peers [ <!ENTITY xxe SYSTEM \"file:///etc/passwd\"> ]>\n"
                    "<peers version=\"1\"><peer><name>&xxe;</name></peer></peers>";
  expect_refused("xxe", xxe, strlen(xxe), NM_EXML_HOSTILE);
  const char *net = "<!DOCTYPE p SYSTEM \"http://127.0.0.1:9/evil.dtd\"><p/>";
  expect_refused("external dtd", net, strlen(net), NM_EXML_HOSTILE);
  const char *param = "<!DOCTYPE p [<!ENTITY % e SYSTEM \"file:///etc/passwd\"> %e;]><p/>";
  expect_refused("parameter entity", param, strlen(param), NM_EXML_HOSTILE);
}

static void test_billion_laughs_refused(void) {
  const char *bomb =
      "<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [\n <!ENTITY lol \"lol\">\n"
      " <!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">\n"
      " <!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">\n"
      " <!ENTITY lol4 \"&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;\">\n"
      " <!ENTITY lol5 \"&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;\">\n"
      " <!ENTITY lol6 \"&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;\">\n"
      " <!ENTITY lol7 \"&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;\">\n"
      " <!ENTITY lol8 \"&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;\">\n"
      " <!ENTITY lol9 \"&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;\">\n"
      "]>\n<peers version=\"1\">&lol9;</peers>";
  expect_refused("billion laughs", bomb, strlen(bomb), NM_EXML_HOSTILE);
}

/* The byte scan for "<!DOCTYPE" sees ASCII; a UTF-16 document hides it from the scan. It must
 * still be refused (after parsing, by the DTD check), and quickly. */
static void test_utf16_doctype_refused(void) {
  const char *ascii = "<?xml version=\"1.0\" encoding=\"UTF-16\"?>"
                      "<!DOCTYPE p [<!ENTITY a \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\">"
                      "<!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\">"
                      "<!ENTITY c \"&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;\">"
                      "<!ENTITY d \"&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;\">"
                      "<!ENTITY e \"&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;\">]>"
                      "<p>&e;&e;&e;&e;</p>";
  size_t n = strlen(ascii);
  char *u16 = malloc(2 * n + 2);
  u16[0] = (char)0xFF; /* little-endian BOM */
  u16[1] = (char)0xFE;
  for (size_t i = 0; i < n; i++) {
    u16[2 + 2 * i] = ascii[i];
    u16[3 + 2 * i] = 0;
  }
  clock_t t0 = clock();
  xmlDoc *doc = NULL;
  char err[300] = "";
  int rc = nm_xml_parse(u16, 2 * n + 2, &doc, err, sizeof err);
  double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
  NMT_CHECK(rc < 0);
  NMT_CHECK(doc == NULL);
  NMT_CHECK(secs < 2.0);
  if (doc) xmlFreeDoc(doc);
  free(u16);
}

static char *nested(int depth) {
  char *s = malloc((size_t)depth * 7 + 1), *p = s;
  for (int i = 0; i < depth; i++) p += sprintf(p, "<a>");
  for (int i = 0; i < depth; i++) p += sprintf(p, "</a>");
  return s;
}

static void test_nesting(void) {
  char *ok = nested(NM_XML_MAX_DEPTH);
  xmlDoc *doc;
  char err[200];
  NMT_EQ_INT(nm_xml_parse(ok, strlen(ok), &doc, err, sizeof err), 0);
  if (doc) xmlFreeDoc(doc);
  free(ok);
  char *deep = nested(NM_XML_MAX_DEPTH + 1);
  expect_refused("depth 17", deep, strlen(deep), NM_EXML_HOSTILE);
  free(deep);
  /* Far beyond libxml2's own limit: refused one way or another, without a crash. */
  char *abyss = nested(100000);
  xmlDoc *d2 = NULL;
  NMT_CHECK(nm_xml_parse(abyss, strlen(abyss), &d2, err, sizeof err) < 0);
  NMT_CHECK(d2 == NULL);
  free(abyss);
}

static void test_size_cap(void) {
  /* Exactly the cap: accepted. One byte more: refused without parsing. */
  size_t cap = NM_XML_MAX_BYTES;
  char *s = malloc(cap + 2);
  memcpy(s, "<a>", 3);
  memset(s + 3, 'x', cap - 7);
  memcpy(s + cap - 4, "</a>", 4);
  s[cap] = 0;
  xmlDoc *doc;
  char err[200];
  NMT_EQ_INT(nm_xml_parse(s, cap, &doc, err, sizeof err), 0);
  if (doc) xmlFreeDoc(doc);
  memcpy(s + cap - 4, "x</a>", 5);
  s[cap + 1] = 0;
  expect_refused("1 MiB + 1", s, cap + 1, NM_EXML_HOSTILE);
  free(s);
}

static void test_malformed(void) {
  static const char *cases[] = {
      "<peers>",                        /* unclosed */
      "<a></b>",                        /* mismatched */
      "not xml at all",                 /* text */
      "<a x=1/>",                       /* unquoted attribute */
      "<a>&undefined;</a>",             /* entity never declared */
      "<a/><b/>",                       /* two roots */
      "<a x=\"1\" x=\"2\"/>",           /* duplicate attribute */
      "\xff\xfe\xfd",                   /* binary */
      "<a>\x01</a>",                    /* control character */
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
    expect_refused(cases[i], cases[i], strlen(cases[i]), NM_EXML);
  expect_refused("empty", "", 0, NM_EXML);
  /* An embedded NUL: the length says more than strlen. */
  expect_refused("nul inside", "<a>\0</a>", 8, NM_EXML);
  /* The reason names the line. */
  xmlDoc *doc;
  char err[300] = "";
  nm_xml_parse("<a>\n<b>\n</a>", 12, &doc, err, sizeof err);
  NMT_HAS(err, "line:3");
}

/* XInclude is not processed: the parser never reads files a document names. */
static void test_xinclude_not_processed(void) {
  const char *s = "<a xmlns:xi=\"http://www.w3.org/2001/XInclude\">"
                  "<xi:include href=\"/etc/passwd\" parse=\"text\"/></a>";
  xmlDoc *doc;
  char err[200];
  NMT_EQ_INT(parse(s, &doc, err, sizeof err), 0);
  char *out;
  size_t len;
  nm_xml_dump(doc, &out, &len);
  NMT_CHECK(strstr(out, "root:") == NULL);
  free(out);
  xmlFreeDoc(doc);
}

static void test_parse_file(void) {
  char dir[] = "/tmp/nmt_xml_XXXXXX";
  NMT_CHECK(mkdtemp(dir) != NULL);
  char path[128];
  snprintf(path, sizeof path, "%s/bad.xml", dir);
  FILE *f = fopen(path, "w");
  fputs("<config>\n  <port>85</port>\n\n  <a x=1/>\n</config>\n", f);
  fclose(f);
  xmlDoc *doc;
  char err[400] = "";
  NMT_EQ_INT(nm_xml_parse_file(path, &doc, err, sizeof err), NM_EXML);
  char want[160];
  snprintf(want, sizeof want, "%s:4:", path);
  NMT_HAS(err, want);
  unlink(path);

  snprintf(path, sizeof path, "%s/missing.xml", dir);
  NMT_EQ_INT(nm_xml_parse_file(path, &doc, err, sizeof err), -ENOENT);
  NMT_HAS(err, path);

  snprintf(path, sizeof path, "%s/dtd.xml", dir);
  f = fopen(path, "w");
  fputs("<?xml version=\"1.0\"?>\n<!DOCTYPE config SYSTEM \"/etc/passwd\">\n<config/>\n", f);
  fclose(f);
  NMT_EQ_INT(nm_xml_parse_file(path, &doc, err, sizeof err), NM_EXML_HOSTILE);
  NMT_HAS(err, path);
  unlink(path);
  rmdir(dir);
}

int main(void) {
  nm_xml_init();
  NMT_RUN(test_well_formed_and_accessors);
  NMT_RUN(test_dump_round_trip);
  NMT_RUN(test_doctype_refused);
  NMT_RUN(test_xxe_refused);
  NMT_RUN(test_billion_laughs_refused);
  NMT_RUN(test_utf16_doctype_refused);
  NMT_RUN(test_nesting);
  NMT_RUN(test_size_cap);
  NMT_RUN(test_malformed);
  NMT_RUN(test_xinclude_not_processed);
  NMT_RUN(test_parse_file);
  xmlCleanupParser();
  return nmt_done();
}
