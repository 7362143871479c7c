"""What the import contracts cannot see: no module takes another module's underscore names, and
an integration (here Flower) is imported only when asked for, with one clear error without it.
"""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# underscore names that a NamedTuple or dataclass carries as public API
PUBLIC_UNDERSCORE = {"_replace", "_asdict", "_fields", "_make", "_field_defaults"}

def module_name(path: Path) -> str:
    """The dotted name a file of twinjax/ or experiments/ is imported as."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[0] == "experiments":  # installed as twinjax_experiments
        parts[0] = "twinjax_experiments"
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__") and name not in PUBLIC_UNDERSCORE


def underscore_imports(source: str, module: str, package: str) -> list[str]:
    """``module``'s uses of another module's underscore names: ``from a.b import _x`` and
    ``b._x`` where ``b`` is an imported twinjax module (imports inside functions included)."""
    tree = ast.parse(source)
    found, names = [], {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            source_module = node.module
            if node.level:  # relative: up from the importing module's package
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source_module = ".".join(base + ([node.module] if node.module else []))
            for alias in node.names:
                if private(alias.name) and source_module != module:
                    found.append(f"{source_module}.{alias.name}")
                names[alias.asname or alias.name] = f"{source_module}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if any(private(part) for part in alias.name.split(".")[1:]):
                    found.append(alias.name)
                top = alias.name.split(".")[0]
                names[alias.asname or top] = alias.name if alias.asname else top
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and private(node.attr):
            chain, value = [node.attr], node.value
            while isinstance(value, ast.Attribute):
                chain.insert(0, value.attr)
                value = value.value
            if isinstance(value, ast.Name) and value.id in names:
                owner = ".".join([names[value.id], *chain[:-1]])
                if owner.split(".")[0] in ("twinjax", "twinjax_experiments") and owner != module:
                    found.append(f"{owner}.{node.attr}")
    return found


def test_no_module_imports_another_modules_underscore_names():
    found = set()
    for path in sorted([*ROOT.glob("twinjax/**/*.py"), *ROOT.glob("experiments/*.py")]):
        module = module_name(path)
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for name in underscore_imports(path.read_text(), module, package):
            found.add(f"{path.relative_to(ROOT)}: {name}")
    assert not found, sorted(found)


def test_the_underscore_check_sees_each_form():
    source = (
        "from twinjax.data.validate import _plain, check_rows\n"
        "from . import _sibling\n"
        "from twinjax.data import validate as V\n"
        "import twinjax.data.io\n"
        "def f(state):\n"
        "    from twinjax.twins.model import _step\n"
        "    state._replace(a=1)\n"
        "    return V._hidden, twinjax.data.io._reader, V.public\n"
    )
    assert sorted(underscore_imports(source, "twinjax.eval.x", "twinjax.eval")) == [
        "twinjax.data.io._reader",
        "twinjax.data.validate._hidden",
        "twinjax.data.validate._plain",
        "twinjax.eval._sibling",
        "twinjax.twins.model._step",
    ]


def test_flower_integration_without_flwr_says_which_extra():
    """Without Flower, importing the integration raises one ImportError naming the extra,
    before it imports JAX (that nothing else in twinjax imports it is an import contract)."""
    code = (
        "import sys\n"
        "sys.modules['flwr'] = None  # as if Flower were not installed\n"
        "try:\n"
        "    import twinjax.integrations.flower\n"
        "except ImportError as e:\n"
        "    print(e, 'jax' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True
    )
    assert out.stdout.strip().endswith('pip install "twinjax[flower]" False'), (
        out.stdout + out.stderr
    )
