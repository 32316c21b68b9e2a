"""Summarise py-spy's collapsed stacks ("frame;frame;… count" lines) into the largest costs."""

from __future__ import annotations

import collections
import re

_FILE = re.compile(r"\((?P<file>[^:()]+)(?::\d+)?\)$")
OURS = ("bot/", "adapters/", "conversations/", "storage/")


def package(frame: str) -> str:
    """A frame's library (the folder under site-packages) or our package, or the stdlib module."""
    match = _FILE.search(frame)
    path = match.group("file") if match else frame
    if "site-packages/" in path:
        return path.split("site-packages/", 1)[1].split("/", 1)[0].removesuffix(".py")
    for ours in OURS:
        if f"/{ours}" in path or path.startswith(ours):
            return ours.rstrip("/")
    # py-spy names files relative to sys.path: "sqlalchemy/sql/base.py", "asyncio/events.py".
    top, nested, _ = path.partition("/")
    return top if nested else path.removesuffix(".py")


def summarise(raw: str, top: int = 25) -> str:
    stacks: list[tuple[list[str], int]] = []
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks.append((stack.split(";"), int(count)))
    total = sum(n for _, n in stacks) or 1
    leaf_pkg: collections.Counter[str] = collections.Counter()
    leaf_fn: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    for frames, n in stacks:
        leaf_pkg[package(frames[-1])] += n
        leaf_fn[frames[-1]] += n
        for frame in set(frames):
            if any(f"/{o}" in frame or f"({o}" in frame for o in OURS):
                inclusive[frame] += n
    held = "the bot process's thread holding the GIL: Python's CPU time, not waits"
    out = [f"py-spy samples: {total} ({held})", ""]
    out.append("Self time by package (where the CPU actually was):")
    out += [f"  {n / total:6.1%}  {name}" for name, n in leaf_pkg.most_common(top)]
    out += ["", "Self time by function:"]
    out += [f"  {n / total:6.1%}  {name}" for name, n in leaf_fn.most_common(top)]
    out += ["", "Inclusive time of our functions (share of samples with it on the stack):"]
    out += [f"  {n / total:6.1%}  {name}" for name, n in inclusive.most_common(top)]
    return "\n".join(out) + "\n"
