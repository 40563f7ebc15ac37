"""webkit: what the web tests share: HTTP requests off the event loop, a parser of the
Prometheus text format that refuses what the format does not allow, headless Chromium,
and a PNG decoder (zlib) to count a screenshot's colours."""
import asyncio
import http.client
import os
import re
import shutil
import struct
import zlib

SAMPLE_RX = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*",?)*)\})? (\d+)$')
LABEL_RX = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\.)*)"')


def _request(port, path, method="GET", timeout=5.0):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request(method, path)
        r = c.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        c.close()


async def request(port, path, method="GET", timeout=5.0):
    """(status, headers, body) of one request, run in a thread: the harness's loop keeps
    reading the programs' logs meanwhile."""
    return await asyncio.to_thread(_request, port, path, method, timeout)


def parse_metrics(text):
    """{name: {"type": t, "help": h, "samples": {frozenset(labels.items()): value}}}.
    Raises ValueError on any line the text format does not allow, a sample before its
    # TYPE, or a counter not named *_total."""
    out, current = {}, None
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name, _, help_ = line[7:].partition(" ")
            out.setdefault(name, {"samples": {}})["help"] = help_
        elif line.startswith("# TYPE "):
            name, _, t = line[7:].partition(" ")
            if t not in ("counter", "gauge"):
                raise ValueError("unexpected type: %r" % line)
            if t == "counter" and not name.endswith("_total"):
                raise ValueError("a counter not named *_total: %s" % name)
            out.setdefault(name, {"samples": {}})["type"] = t
            current = name
        else:
            m = SAMPLE_RX.match(line)
            if not m:
                raise ValueError("not a sample line: %r" % line)
            name = m.group(1)
            if name != current or "help" not in out[name]:
                raise ValueError("sample %s outside its HELP and TYPE" % name)
            labels = frozenset(LABEL_RX.findall(m.group(3) or ""))
            out[name]["samples"][labels] = int(m.group(4))
    return out


def sample(metrics, name, **labels):
    return metrics.get(name, {"samples": {}})["samples"].get(frozenset(labels.items()))


def chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


async def browse(h, url, what, screenshot=None, budget_ms=6000):
    """Loads url in headless Chromium, lets its JavaScript run for budget_ms of virtual
    time, and returns the DOM (or, with screenshot=FILE, writes the picture there)."""
    profile = os.path.join(h.dir, "chromium-profile")
    args = [chromium(), "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--disable-extensions", "--disable-background-networking", "--user-data-dir=" + profile,
            "--virtual-time-budget=%d" % budget_ms, "--window-size=900,700"]
    args += ["--screenshot=" + screenshot] if screenshot else ["--dump-dom"]
    proc = await asyncio.create_subprocess_exec(*args, url, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    h.note("chromium %s -> exit %d" % (what, proc.returncode))
    if proc.returncode != 0:
        h.note(err.decode("utf-8", "replace")[-1500:])
    return out.decode("utf-8", "replace")


def png_colours(path, limit=4096):
    """How many distinct colours a PNG (8-bit RGB or RGBA, not interlaced) holds, counted
    up to limit."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    pos, idat, hdr = 8, b"", None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            hdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    w, hgt, depth, ctype, _, _, interlace = hdr
    if depth != 8 or ctype not in (2, 6) or interlace:
        raise ValueError("PNG kind not handled: depth %d colour type %d" % (depth, ctype))
    bpp = 3 if ctype == 2 else 4
    raw = zlib.decompress(idat)
    stride = w * bpp
    prev = bytearray(stride)
    colours = set()
    for y in range(hgt):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        if y % 4 == 0:  # every fourth row is plenty to tell a page from a blank one
            for x in range(0, stride, bpp * 2):
                colours.add(bytes(line[x:x + 3]))
            if len(colours) >= limit:
                return len(colours)
        prev = line
    return len(colours)
