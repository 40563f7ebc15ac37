"""Shared by the man page checks: render a page with man-db, split it into sections, and
pick out the options named in a text the way a reader does."""
import os
import re
import shutil
import subprocess

SKIP = 77  # ctest's SKIP_RETURN_CODE for these tests


def have_man():
    return shutil.which("man") is not None


def render(page, width, warnings=None):
    """Returns (stdout, stderr) of `man -l PAGE` at WIDTH columns, formatting stripped."""
    env = dict(os.environ, MANWIDTH=str(width), LC_ALL="C.UTF-8")
    env.pop("MAN_KEEP_FORMATTING", None)
    env.pop("MANPAGER", None)
    env.pop("PAGER", None)
    cmd = ["man"]
    if warnings is not None:
        cmd.append("--warnings" if warnings == "" else "--warnings=" + warnings)
    cmd += ["-E", "UTF-8", "-l", page]
    p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       stdin=subprocess.DEVNULL, timeout=30)
    out = p.stdout.decode("utf-8", "replace")
    out = re.sub(r".\x08", "", out)               # overstrike bold/underline
    out = re.sub(r"\x1b\[[0-9;]*m", "", out)      # SGR escapes
    return out, p.stderr.decode("utf-8", "replace"), p.returncode


def sections(text):
    """{SECTION NAME: [lines]} of a rendered page (headings start at column 0)."""
    out, name = {}, None
    for line in text.splitlines():
        if re.match(r"^[A-Z][A-Z0-9 ]*$", line):
            name = line.strip()
            out[name] = []
        elif name is not None:
            out[name].append(line)
    return out


_OPT = re.compile(r"--[A-Za-z][A-Za-z0-9-]*|-[A-Za-z](?![A-Za-z0-9-])")


def options_in(line):
    """The options a line names as options: on a "usage:" line every one; elsewhere a
    word starting with - or -- that begins the line, or follows '[', '(', '|' or a comma
    after another option. An option mentioned in the middle of a sentence ('... or the
    manager's --relay-key') is not counted, nor is a dash inside a word (FIRST-LAST)."""
    found = []
    synopsis = line.startswith("usage:")
    for m in _OPT.finditer(line):
        before = line[:m.start()]
        if before and (before[-1].isalnum() or before[-1] in "-_"):
            continue
        prefix = before.rstrip()
        if (synopsis or not prefix or prefix[-1] in "[(|"
                or (prefix.endswith(",") and re.search(r"(^|[\s\[(|])--?[A-Za-z][\w-]*,$", prefix))):
            found.append(m.group(0))
    return found
