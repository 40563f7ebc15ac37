#!/usr/bin/env python3
"""The pair path (issue 10, "what it must show" 4): one pair that cannot connect while both
are reachable by everyone else still gets every line exactly once, through the relay the
manager arranged for it, and natmesh-ctl status shows that path.

  who     runs where   reaches                 must see
  alice   127.0.0.2    carol; never bob        bob's and carol's lines
  bob     127.0.0.3    alice and carol         alice's (through his pair relay) and carol's
  carol   127.0.0.1    alice and bob           alice's and bob's
  (carol leaves: nobody can serve bob, which the manager and natmesh-ctl say loudly; then)
  dave    127.0.0.1    alice and bob           alice's and bob's; serves bob's pull now

A firewall rule refuses every TCP connection alice opens to bob (a reset, as a host
firewall says "no"), and nothing else: bob still connects to alice, carol to both. So alice
complains about bob, alone: no quorum, bob is not suspicious. The manager gives bob a relay
to pull from that is neither alice (the reporter) nor bob: carol. The rule is real (nft in
a network namespace of the test's own: `unshare -n`, so the host's network is untouched),
hence root, unshare and nft are needed; without them the test is skipped.

Without the pair path, alice's lines never reach bob: the test fails at the chat round."""
import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import harness  # noqa: E402

ALICE, BOB, CAROL = "127.0.0.2", "127.0.0.3", "127.0.0.1"
NETNS_ENV = "NATMESH_PAIR_PATH_NETNS"

# Only the connections alice opens to bob: a SYN without ACK from her address to his. His
# SYN-ACKs to her (he dials her) pass, and so does everything else.
NFT_RULES = """
table inet natmesh_pair {
  chain input {
    type filter hook input priority 0; policy accept;
    ip saddr %s ip daddr %s tcp flags & (syn | ack) == syn reject with tcp reset
  }
}
""" % (ALICE, BOB)


def enter_netns():
    """Re-runs this test inside a network namespace of its own with the rule loaded.
    Returns a reason to skip when that is not possible here."""
    if os.environ.get(NETNS_ENV) == "1":
        return None
    if os.geteuid() != 0:
        return "needs root for a network namespace and a firewall rule"
    for tool in ("unshare", "nft", "ip"):
        if not shutil.which(tool):
            return "needs %s" % tool
    rules = os.path.join("/tmp", "natmesh-pair-path-%d.nft" % os.getpid())
    with open(rules, "w") as f:
        f.write(NFT_RULES)
    inner = 'ip link set lo up && nft -f "$0" && rm -f "$0" && exec "$@"'
    os.environ[NETNS_ENV] = "1"
    os.execvp("unshare", ["unshare", "-n", "sh", "-c", inner, rules, sys.executable,
                          os.path.abspath(__file__)] + sys.argv[1:])


SKIP = enter_netns()


async def test(h):
    if SKIP:
        raise harness.Skip(SKIP)
    m = await h.start_manager()
    carol = await h.start_servant("carol", m, listen=CAROL)
    alice = await h.start_servant("alice", m, listen=ALICE)
    # bob runs with --no-reverse: the pair path is what is tested, so alice's lines must
    # come through his pair relay, not back on his own connection to her (connection
    # reversal would carry them there and put the relay on standby).
    bob = await h.start_servant("bob", m, listen=BOB, extra=("--no-reverse",))
    everyone = [alice, bob, carol]
    await h.wait_peer_count(everyone, 3)

    # alice alone complains: threshold reached, but one reporter of two others is no quorum.
    await h.expect(m.wait_log(r"complaint: alice cannot reach bob \(3 of 3 from it", 20),
                   "alice's complaints about bob reach the threshold")
    h.check(not m.find(r"verdict: bob .*suspicious", "stderr"),
            "one reporter is no quorum: bob is not judged suspicious")
    # Not fatal: without a path the chat round below shows what it costs (lines lost).
    try:
        hit = await m.wait_log(r"pair: alice cannot reach bob .*: bob pulls from servant (\w+)", 10)
        h.check_eq(hit.group(1), "carol", "the manager arranges a pair path for bob, and says so: "
                   "bob pulls from carol (neither alice, the reporter, nor bob)")
        await h.expect(bob.wait_log(r"pulling from relay carol", 10), "bob pulls from carol")
    except harness.WaitTimeout as e:
        h.check(False, "the manager arranges a pair path for bob: %s" % e, fatal=False)

    # Every line, everyone, exactly once: alice's reaches bob through carol only.
    _, lines = await h.chat_round(everyone, everyone, "pair path")
    _, more = await h.chat_round(everyone, everyone, "pair path again")
    lines.update(more)
    h.check_exactly_once(everyone, lines, "chat with one pair that cannot connect")

    # natmesh-ctl shows the path: state stays direct, the relay and why.
    st = await h.status(m)
    b = [s for s in st.iter("servant") if s.get("name") == "bob"][0]
    h.check_eq((b.get("state"), b.get("relay-name"), b.get("relay-reason"), b.get("unreached-by")),
               ("direct", "carol", "pair", "alice"),
               "status: bob is direct, pulls from carol for the pair alice cannot reach")
    a = [s for s in st.iter("servant") if s.get("name") == "alice"][0]
    h.check(a.get("relay-reason") is None and a.get("unserved") is None,
            "status: alice has no relay and nobody unserved")
    rc, out, _ = await h.ctl(m, "status")
    row = [l for l in out.splitlines() if l.split()[:1] == ["bob"]]
    h.check(rc == 0 and row and "via carol (pair)" in row[0],
            "natmesh-ctl status shows bob 'via carol (pair)': %r" % (row[0] if row else out))

    # carol leaves: nobody else can serve bob (alice is the reporter). Loud, never silent.
    await carol.stop()
    await h.expect(m.wait_log(r"relay: bob lost its relay carol; reassigning"), "bob's relay left")
    await h.expect(m.wait_log(r"error: pair: alice cannot reach bob and no relay can serve bob"),
                   "the manager says loudly that nothing can serve the pair")
    st = await h.status(m)
    b = [s for s in st.iter("servant") if s.get("name") == "bob"][0]
    h.check_eq((b.get("state"), b.get("relay"), b.get("relay-reason"), b.get("unserved")),
               ("direct", "", None, "alice"), "status: bob is direct, without relay, unserved for alice")
    rc, out, _ = await h.ctl(m, "status")
    h.check("NONE (pair unserved)" in out and "warning: bob cannot be reached by alice" in out,
            "natmesh-ctl shows the unserved pair and warns")

    # dave joins: he can serve, and does at once.
    since = {alice: alice.mark("stderr"), bob: bob.mark("stderr")}
    dave = await h.start_servant("dave", m, listen=CAROL)
    await h.expect(m.wait_log(r"pair: alice cannot reach bob .*: bob pulls from servant dave"),
                   "a newcomer that can serve takes the pair")
    await h.expect(bob.wait_log(r"pulling from relay dave", 10), "bob pulls from dave")
    everyone = [alice, bob, dave]
    await h.wait_peer_count(everyone, 3, since=since)
    _, lines = await h.chat_round(everyone, everyone, "pair path through dave")
    h.check_exactly_once(everyone, lines, "chat after the pair relay changed")


if __name__ == "__main__":
    harness.main(test, "pair_path", budget=120)
