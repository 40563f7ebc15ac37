"""hostile: the hostile inputs shared by the manager and servant tests.

Every case is (name, what to send, how the session should end). The shared cases are the
framing and XML attacks any natmesh listener must survive; each test adds the ones specific
to its protocol (hello for the manager, peer-hello and chat for a servant). attack() sends
one case and checks that the target closed the connection and logged why.

Since issue 9 every link is TLS: a case is sent inside a TLS session made with an
attacker's key (by default the stranger's, a key listed nowhere), where the frame parser
sees it; plain=True sends it in clear instead (a client that does not speak TLS). Targets
rate-limit what unauthenticated sessions make them log (at most 5 lines a second of a
kind), so attacks are paced under that rate (PACE) for each close to be logged.
"""
import asyncio
import time

from harness import DELIVERY, RawPeer, frame, random_id

PACE = 0.25  # seconds between attacks on targets that rate-limit their logs

BILLION_LAUGHS = (
    '<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
    + "".join(' <!ENTITY lol%d "%s">\n' % (i, ("&lol%s;" % ("" if i == 2 else i - 1)) * 10)
              for i in range(2, 10))
    + ']>\n<ROOT a="&lol9;"/>')

XXE = ('<?xml version="1.0"?>\n<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
       '<ROOT a="&xxe;">&xxe;</ROOT>')

EXTERNAL_DTD = '<!DOCTYPE ROOT SYSTEM "http://127.0.0.1:9/evil.dtd"><ROOT/>'

PARAMETER_ENTITY = ('<!DOCTYPE ROOT [<!ENTITY % pe SYSTEM "file:///etc/passwd"> %pe;]><ROOT/>')


def nested(depth, root="ROOT", attrs=""):
    return "<%s%s>" % (root, attrs) + "<a>" * depth + "</a>" * depth + "</%s>" % root


def padded(root, attrs, size):
    """A well-formed document of exactly size bytes (a long comment inside)."""
    head = "<%s %s><!--" % (root, attrs)
    tail = "--></%s>" % root
    return head + "x" * (size - len(head) - len(tail)) + tail


def xml_attacks(msg_type, root, attrs):
    """Hostile XML in a frame of msg_type whose document would be <root attrs/>."""
    def sub(doc):
        return doc.replace("ROOT", root).replace('a="', attrs + ' x="')

    return [
        ("malformed XML (unclosed)", frame(msg_type, "<%s %s>" % (root, attrs))),
        ("malformed XML (garbage)", frame(msg_type, b"\x00\xff\xfe not xml at all")),
        ("malformed XML (undefined entity)", frame(msg_type, "<%s %s>&nbsp;</%s>" % (root, attrs, root))),
        ("wrong root element", frame(msg_type, "<nothing %s/>" % attrs)),
        ("DOCTYPE billion laughs", frame(msg_type, sub(BILLION_LAUGHS))),
        ("DOCTYPE external entity (XXE)", frame(msg_type, sub(XXE))),
        ("DOCTYPE external DTD", frame(msg_type, sub(EXTERNAL_DTD))),
        ("parameter entity", frame(msg_type, sub(PARAMETER_ENTITY))),
        ("UTF-16 DOCTYPE (hidden from a byte scan)",
         frame(msg_type, sub(BILLION_LAUGHS).replace('<?xml version="1.0"?>',
                                                     '<?xml version="1.0" encoding="UTF-16"?>').encode("utf-16"))),
        ("nesting 17 deep", frame(msg_type, nested(16, root, " " + attrs))),
        ("nesting 500 deep", frame(msg_type, nested(500, root, " " + attrs))),
    ]


def framing_attacks(first_type):
    """Broken framing; first_type is the frame that would normally open the session."""
    return [
        ("bad magic (HTTP)", b"GET / HTTP/1.1\r\nHost: natmesh\r\n\r\n"),
        ("bad magic (zeros)", b"\x00" * 64),
        ("bad version 2", frame(first_type, "<x/>", version=2)),
        ("bad version 0", frame(first_type, "<x/>", version=0)),
        ("oversized length before identification (4097)", frame(first_type, length=4097)),
        ("oversized length 0xFFFFFFFF", frame(first_type, length=0xFFFFFFFF)),
        ("unknown frame type 0x7F", frame(0x7F, "<x/>")),
        ("unknown frame type 0xFF, empty", frame(0xFF)),
        ("pre-identification frame of 4096 bytes of garbage", frame(first_type, b"\x01" * 4096)),
    ]


def log_injection(msg_type):
    """An error frame whose text tries to forge a log line and drive the terminal."""
    return frame(msg_type, "bye\n12:00:00.000 natmesh: info: FORGED log line\x1b[2J\x1b]0;pwned\x07")


async def attack(h, target, port, name, data, close_within=DELIVERY, half_close=False, key=None,
                 plain=False):
    """Sends data to target (a harness process) on a fresh connection to port (TLS with key,
    default the stranger's, unless plain or the programs speak plain TCP); target must close
    it within close_within seconds and log a line naming the connection and why. Returns the
    RawPeer (its frames_before_close) and how long the close took."""
    since = target.mark("stderr")
    if plain or not h.secure:
        c = await RawPeer.connect("127.0.0.1", port, name)
    else:
        await asyncio.sleep(PACE)
        c = await h.connect(port, name, key=key)
    lport = c.writer.get_extra_info("sockname")[1]
    await c.send(data)
    if half_close:
        c.half_close()
    t0 = time.monotonic()
    closed = await c.wait_closed_by_peer(close_within)
    took = time.monotonic() - t0
    c.close()
    h.check(closed, "%s: %s closed the connection (%.2fs)" % (name, target.name, took))
    hit = await target.wait_log(r"\(127\.0\.0\.1:%d\) (closed: .*|reports an error.*)" % lport, DELIVERY, since)
    h.check(bool(hit.group(1).strip()), "%s: logged \"%s\"" % (name, hit.group(1)[:120]))
    return c, took


async def newcomer_chats(h, m, alice, bob):
    """After the attacks: a new servant (carol) joins through manager m, and chat flows between
    alice, bob and carol exactly once."""
    since = {s: s.mark("stderr") for s in (alice, bob)}
    carol = await h.start_servant("carol", m)
    await h.wait_peer_count([alice, bob, carol], 3, since={**since, carol: 0})
    _, lines = await h.chat_round([alice, bob, carol], [alice, bob, carol], "after the attacks")
    h.check_exactly_once([alice, bob, carol], lines, "after the attacks")
