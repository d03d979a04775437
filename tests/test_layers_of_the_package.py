"""The dependency direction of docs/DESIGN.md, section 2, checked on the source: no module imports
from a layer above its own, and there is no import cycle between the package's parts."""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "tinyeffnet"

# The layers, lowest first; a part may import from its own layer and the ones below.
LAYERS = [
    {"ops._checks", "files", "machine", "testing", "process", "__version__"},
    {"ops", "ops.reference", "cuda"},
    {"backend"},
    {"nn", "optim", "cuda.optim"},
    {"models", "nn_walk", "data", "search.arch"},
    {"train", "interop", "analysis", "selfcheck"},
    {"search"},
    {"cli", "bench", "__main__", "tinyeffnet", "exercises"},
]
LEVEL = {part: i for i, layer in enumerate(LAYERS) for part in layer}


def part_of(module: str) -> str:
    """'tinyeffnet.ops.reference.conv' -> 'ops.reference'; 'tinyeffnet.cuda.optim' -> 'cuda.optim'."""
    parts = module.split(".")[1:]
    if not parts:
        return "tinyeffnet"
    if parts[0] == "ops" and len(parts) > 1 and parts[1] in ("reference", "_checks"):
        return f"ops.{parts[1]}"
    if parts[0] == "cuda" and len(parts) > 1 and parts[1] == "optim":
        return "cuda.optim"
    if parts[0] == "search" and len(parts) > 1 and parts[1] == "arch":
        return "search.arch"          # the stage-table file: read by train, imports only models
    return parts[0]


def imports_of(path: Path) -> set:
    module = ".".join(("tinyeffnet",) + path.relative_to(ROOT).with_suffix("").parts)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    package = package.removesuffix(".__init__")
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
                found |= {target} if node.module else {f"{target}.{a.name}" for a in node.names}
            elif node.module == "tinyeffnet":                   # from tinyeffnet import backend
                found |= {f"tinyeffnet.{a.name}" for a in node.names}
            elif node.module and node.module.startswith("tinyeffnet."):
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("tinyeffnet")}
    return {part_of(t) for t in found}


def graph() -> dict:
    edges = {}
    for path in ROOT.rglob("*.py"):
        module = ".".join(("tinyeffnet",) + path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        edges.setdefault(part_of(module), set()).update(imports_of(path))
    return edges


def test_every_part_has_a_layer():
    assert set(graph()) <= set(LEVEL), set(graph()) - set(LEVEL)


def test_nothing_imports_upward():
    upward = sorted(f"{a} -> {b}" for a, targets in graph().items() for b in targets
                    if b in LEVEL and LEVEL[b] > LEVEL[a])
    assert upward == [], upward


def test_the_test_can_see_an_upward_import():
    # the control: ops importing nn would be reported
    assert LEVEL["nn"] > LEVEL["ops"]
    assert "nn" in {part_of("tinyeffnet.nn.layers")} and part_of("tinyeffnet.cuda.optim") == "cuda.optim"
