#!/usr/bin/env python3
"""Import circles between the modules of a Rust crate.

usage: circles.py [SRC] [-v] [--check]   (default: src)

For every file under SRC (one module each; inline `mod x { }` blocks count as their file)
it lists what the file names of other modules of the crate: `use crate::…`, `use super::…`,
`use self::…`, `use child::…` and the same paths written inline in code (`crate::a::b()`,
`super::f()`). A path is charged to the deepest module file it reaches, so `use
crate::engine::swarm::X` is an edge to src/engine/swarm/mod.rs even when X is re-exported
from deeper. Comments are ignored; string literals are blanked.

Prints the pairs that name each other (A -> B and B -> A), those between a module and its
own parent apart, then every larger circle (strongly connected component of more than two
files), with the lines behind each edge (-v).

With --check it exits 1 when a circle remains once the edges from a module to its own
descendants are set aside (a parent naming what its parts define, to re-export or to
call, is how a module is split into files; every other circle is a defect).
"""
import os
import re
import sys
from collections import defaultdict

args = [a for a in sys.argv[1:] if not a.startswith("-")]
root = args[0] if args else "src"
check = "--check" in sys.argv
verbose = "-v" in sys.argv


def module_of(path):
    rel = os.path.relpath(path, root)[:-3].split(os.sep)
    if rel == ["lib"]:
        return ()
    if rel[-1] == "mod":
        rel = rel[:-1]
    return tuple(rel)


files = {}
for d, _, fs in os.walk(root):
    for f in fs:
        if f.endswith(".rs") and not (d == root and f == "main.rs"):
            p = os.path.join(d, f)
            files[module_of(p)] = p
file_mods = set(files)
# modules, inline ones included (`mod tests {` …), for telling a module from an item in `use`
all_mods = set(file_mods)
for m, p in files.items():
    for l in open(p, encoding="utf-8"):
        x = re.match(r"^\s*(pub(\([^)]*\))?\s+)?mod\s+(\w+)\s*\{", l)
        if x:
            all_mods.add(m + (x.group(3),))


def strip(line):
    line = re.sub(r'"(\\.|[^"\\])*"', '""', line)
    line = re.sub(r"'(\\.|[^'\\])'", "''", line)
    return line.split("//")[0]


def expand(tree):
    """`a::{b, c::{d, e as f}}` -> [a::b, a::c::d, a::c::e as f]."""
    tree = tree.strip()
    i = tree.find("{")
    if i < 0:
        return [re.sub(r"\s+", " ", tree).strip()]
    head, body = tree[:i], tree[i + 1 : tree.rfind("}")]
    parts, depth, cur = [], 0, ""
    for ch in body:
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
            continue
        depth += ch == "{"
        depth -= ch == "}"
        cur += ch
    parts.append(cur)
    out = []
    for p in parts:
        if p.strip():
            out += [(head + q) if q != "self" else head.rstrip(":") for q in expand(p)]
    return out


def resolve(scope, children, aliases, path):
    """The crate path `path` stands for in `scope`, or None (another crate, std, a local)."""
    segs = [s for s in path.split("::") if s]
    if not segs:
        return None
    cur = list(scope)
    if segs[0] in aliases.get(tuple(scope), {}):
        cur, segs = list(aliases[tuple(scope)][segs[0]]), segs[1:]
    elif segs[0] == "crate":
        cur, segs = [], segs[1:]
    elif segs[0] in ("super", "self"):
        while segs and segs[0] in ("super", "self"):
            if segs[0] == "super":
                cur = cur[:-1]
            segs = segs[1:]
    elif segs[0] in children.get(tuple(scope), ()):
        pass
    else:
        return None  # another crate, std, or a local item
    return tuple(cur + segs)


def target(scope, children, aliases, path):
    full = resolve(scope, children, aliases, path)
    if full is None:
        return None
    for n in range(len(full), -1, -1):
        if full[:n] in file_mods:
            return full[:n]
    return None


edges = defaultdict(list)  # (from, to) -> [where]
for mod, path in sorted(files.items()):
    lines = open(path, encoding="utf-8").read().split("\n")
    # declared child modules per scope
    children = defaultdict(set)
    aliases = defaultdict(dict)  # scope -> {name: module path} brought in by `use`
    scopes = [(list(mod), None)]  # (scope, depth at which it closes)
    depth = 0
    stmt, stmt_line = None, 0
    for no, raw in enumerate(lines, 1):
        s = strip(raw)
        scope = scopes[-1][0]
        m = re.match(r"^\s*(pub(\([^)]*\))?\s+)?mod\s+(\w+)\s*(;|\{)", s)
        if m:
            children[tuple(scope)].add(m.group(3))
        if stmt is None and re.match(r"^\s*(pub(\([^)]*\))?\s+)?use\s", s):
            stmt, stmt_line = "", no
        if stmt is not None:
            stmt += s + " "
            if ";" in s:
                body = re.sub(r"^\s*(pub(\([^)]*\))?\s+)?use\s+", "", stmt).split(";")[0]
                for leaf in expand(body):
                    p, _, alias = leaf.partition(" as ")
                    p = p.strip().replace("::*", "")
                    full = resolve(scope, children, aliases, p)
                    if full is not None and full in all_mods:
                        aliases[tuple(scope)][alias.strip() or full[-1] if full else ""] = full
                    t = target(scope, children, aliases, p)
                    if t is not None and files[t] != path:
                        edges[(mod, t)].append(f"{path}:{stmt_line} use {p}")
                stmt = None
        else:
            for p in re.findall(r"(?<![\w:])((?:crate|super|self|\w+)(?:::\w+)+)", s):
                t = target(scope, children, aliases, p)
                if t is not None and files[t] != path:
                    edges[(mod, t)].append(f"{path}:{no} {p}")
        depth += s.count("{") - s.count("}")
        if m and m.group(4) == "{":
            scopes.append((scope + [m.group(3)], depth - 1))
        while len(scopes) > 1 and depth <= scopes[-1][1]:
            scopes.pop()


def name(m):
    return files[m]


def is_parent(a, b):
    return len(b) == len(a) + 1 and b[: len(a)] == a


pairs, family = [], []
for (a, b) in sorted(edges):
    if (b, a) in edges and a < b:
        (family if is_parent(a, b) or is_parent(b, a) else pairs).append((a, b))


def show(title, items):
    print(f"{title}: {len(items)}")
    for a, b in items:
        print(f"  {name(a)} <-> {name(b)}")
        if verbose:
            for w in edges[(a, b)][:3] + edges[(b, a)][:3]:
                print(f"      {w}")


show("circles between two modules", pairs)
show("circles between a module and its parent", family)

def sccs(graph):
    """The strongly connected components of `graph` (Tarjan), over every module file."""
    index, low, stack, on, comps, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            comps.append(comp)

    for v in sorted(file_mods):
        if v not in index:
            visit(v)
    return comps


sys.setrecursionlimit(10000)
# larger circles: strongly connected components
graph = defaultdict(set)
for a, b in edges:
    graph[a].add(b)
comps = sccs(graph)
big = [sorted(c) for c in comps if len(c) > 2]
print(f"circles through three or more modules (strongly connected groups): {len(big)}")
for c in big:
    print("  " + ", ".join(name(m) for m in c))


def is_ancestor(a, b):
    return len(b) > len(a) and b[: len(a)] == a


# The circles left once a module's edges into its own parts are set aside.
graph = defaultdict(set)
for a, b in edges:
    if not is_ancestor(a, b):
        graph[a].add(b)
left = [sorted(c) for c in sccs(graph) if len(c) > 1]
print(f"circles besides a module naming its own parts: {len(left)}")
for c in left:
    print("  " + ", ".join(name(m) for m in c))
    for a in c:
        for b in c:
            if b in graph[a]:
                for w in edges[(a, b)][:2]:
                    print(f"      {w}")

# The layers: cli -> engine -> {docker, state} -> model (README, Layout). An edge may only
# go down; `error` (the crate's typed errors and exit codes) sits between the engine and
# the modules whose errors it wraps.
below = {
    "cli": {"engine", "docker", "state", "model", "error"},
    "engine": {"docker", "state", "model", "error"},
    "error": {"docker", "state", "model"},
    "docker": {"model"},
    "state": {"model"},
    "model": set(),
}
upward = sorted(
    (a, b)
    for a, b in edges
    if a and b and a[0] != b[0] and a[0] in below and b[0] in below and b[0] not in below[a[0]]
)
print(f"imports against the layers: {len(upward)}")
for a, b in upward:
    for w in edges[(a, b)][:2]:
        print(f"  {w}")
if check and (left or upward):
    sys.exit(1)
