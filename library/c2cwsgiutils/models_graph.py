"""Print a Graphviz graph of the SQLAlchemy ORM classes of a module.

Put in the application a small script::

    import sys
    from c2cwsgiutils.models_graph import generate_model_graph
    from my_app import models

    if __name__ == "__main__":
        generate_model_graph(models)

and render its output with Graphviz: ``python3 models_graph.py | dot -Tsvg > models.svg``
(``python3 models_graph.py MyClass`` limits the graph to ``MyClass`` and the classes that derive
from it; the default root is ``models.Base``).

Each class is a box with its name and the attributes it maps itself (not those it inherits):
``name`` for a column, ``name [null]`` for a nullable column, then ``name -> Target`` for each
relationship. A solid arrow goes from a class to each parent class, a dashed one from a class
to the target of each of its relationships.

.. versionadded:: 6.0
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from types import ModuleType
from typing import Any

__all__ = ["generate_model_graph"]

_USAGE = (
    "Usage: {prog} [ROOT_CLASS]\n"
    "Print a Graphviz graph of the ORM classes deriving from ROOT_CLASS (default: Base).\n"
)


def generate_model_graph(module: ModuleType) -> None:
    """Print on the standard output the Graphviz graph of the ORM classes of ``module``.

    The root class is ``module.Base``, or the class of ``module`` named by the first command line
    argument (``sys.argv[1]``). More than one argument prints the usage and exits with code 1.

    Args:
        module: the module that holds the ORM classes.
    """
    if len(sys.argv) == 1:
        root_name = "Base"
    elif len(sys.argv) == 2:  # noqa: PLR2004  # the program name and the root class
        root_name = sys.argv[1]
    else:
        sys.stderr.write(_USAGE.format(prog=sys.argv[0]))
        sys.exit(1)
    root = getattr(module, root_name, None)
    if not isinstance(root, type):
        sys.stderr.write(f"{module.__name__} has no class named {root_name}\n")
        sys.exit(1)
    sys.stdout.write(_graph(root))


def _graph(root: type) -> str:
    classes = list(_classes(root))
    names = [cls.__name__ for cls in classes]
    # Node ids are the class names, qualified only when two classes share a name.
    ids = {
        cls: _quote(
            cls.__name__ if names.count(cls.__name__) == 1 else f"{cls.__module__}.{cls.__qualname__}"
        )
        for cls in classes
    }
    lines = [
        "digraph {",
        "  rankdir=BT;",
        '  node [shape=box, fontname="Helvetica"];',
        '  edge [fontname="Helvetica"];',
    ]
    for cls in classes:
        attributes = "".join(_quote(line) + "\\l" for line in _own_lines(cls))
        label = _quote(cls.__name__) + ("\\n\\n" + attributes if attributes else "")
        lines.append(f'  "{ids[cls]}" [label="{label}"];')
    for cls in classes:
        lines.extend(f'  "{ids[cls]}" -> "{ids[parent]}";' for parent in cls.__bases__ if parent in ids)
        lines.extend(
            f'  "{ids[cls]}" -> "{ids[target]}" [style=dashed, label="{_quote(name)}"];'
            for name, target in _relationships(cls)
            if target in ids
        )
    lines.append("}")
    return "\n".join(lines) + "\n"


def _classes(root: type) -> Iterator[type]:
    """The root and every class deriving from it, each once, parents first."""
    seen: set[type] = set()
    stack = [root]
    while stack:
        cls = stack.pop(0)
        if cls in seen:
            continue
        seen.add(cls)
        yield cls
        stack.extend(cls.__subclasses__())


def _mapper(cls: type) -> Any:
    from sqlalchemy import inspect

    return inspect(cls, raiseerr=False)


def _own_attributes(cls: type) -> tuple[list[Any], list[Any]]:
    """The column and relationship attributes that ``cls`` maps and its parent mapper does not."""
    mapper = _mapper(cls)
    if mapper is None:
        return [], []
    inherited = set(mapper.inherits.attrs.keys()) if mapper.inherits is not None else set()

    def own(props: Any) -> list[Any]:
        return [prop for prop in props if prop.key not in inherited and not prop.key.startswith("_")]

    return own(mapper.column_attrs), own(mapper.relationships)


def _own_lines(cls: type) -> Iterator[str]:
    columns, relationships = _own_attributes(cls)
    for prop in columns:
        nullable = all(getattr(column, "nullable", False) for column in prop.columns)
        yield f"{prop.key} [null]" if nullable else prop.key
    for prop in relationships:
        yield f"{prop.key} -> {prop.mapper.class_.__name__}"


def _relationships(cls: type) -> Iterator[tuple[str, type]]:
    for prop in _own_attributes(cls)[1]:
        yield prop.key, prop.mapper.class_


def _quote(text: str) -> str:
    """Escape text for a double-quoted string of the dot language."""
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
