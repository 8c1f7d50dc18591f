"""The import graph of the core, read from the source with `ast`: imports point one way (docs/ARCHITECTURE.md).

Every `import` and `from ... import` counts, at module level or inside a function (a local import that only dodges
a cycle is still a cycle), and importing `a.b.c` also runs the packages `a` and `a.b`."""
import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("studio", "training", "realtime")


def modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in (REPO / pkg).rglob("*.py"):
            parts = list(path.relative_to(REPO).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


def import_graph() -> dict[str, set[str]]:
    """module -> the project modules it imports (and the packages that importing them runs)."""
    mods = modules()

    def resolve(name: str):
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {m: set() for m in mods}
    for mod, path in mods.items():
        here = mod.split(".") if path.name == "__init__.py" else mod.split(".")[:-1]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = here[:len(here) - node.level + 1] if node.level else []
                prefix = ".".join(base + ([node.module] if node.module else []))
                names = [f"{prefix}.{a.name}" for a in node.names]
            else:
                continue
            for name in names:
                target = resolve(name)
                if target is None or target == mod:
                    continue
                graph[mod].add(target)
                parts = target.split(".")
                for k in range(1, len(parts)):  # `import a.b.c` runs a/__init__ and a/b/__init__ first
                    package = ".".join(parts[:k])
                    if package in mods and not (mod == package or mod.startswith(package + ".")):
                        graph[mod].add(package)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
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
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycle_between_modules():
    graph = import_graph()
    assert len(graph) > 50 and "studio.color" in graph["studio.characters"]  # the graph was read
    found = cycles(graph)
    assert not found, "import cycles: " + "; ".join(
        " <-> ".join(f"{m} -> {sorted(set(graph[m]) & set(c))}" for m in c) for c in found)


ENTRY_POINTS = ("studio.ui", "studio.__main__")  # the app and the studio CLI (its --engine runs realtime.student)


def test_the_layers_point_one_way():
    """training and realtime never import each other; the core (studio, less its entry points) imports neither;
    only studio.ui imports gradio."""
    graph = import_graph()
    for mod, targets in graph.items():
        layer = mod.split(".")[0]
        if layer == "studio" and not mod.startswith(ENTRY_POINTS):
            assert not {t for t in targets if t.split(".")[0] in ("training", "realtime")}, mod
        if layer in ("training", "realtime"):
            other = "realtime" if layer == "training" else "training"
            assert not {t for t in targets if t.split(".")[0] == other}, mod
    for mod, path in modules().items():
        if not mod.startswith("studio.ui"):
            tree = ast.parse(path.read_text())
            imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
            imported |= {(n.module or "").split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
            assert "gradio" not in imported, mod


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
