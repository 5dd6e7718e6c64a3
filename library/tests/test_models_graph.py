from __future__ import annotations

import shutil
import subprocess
import sys
import types

import pytest
from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from c2cwsgiutils.models_graph import generate_model_graph


def _models() -> types.ModuleType:
    """A small declarative model: joined inheritance, a relationship, a name that needs escaping."""

    class Base(DeclarativeBase):
        pass

    class Owner(Base):
        __tablename__ = "owner"
        id: Mapped[int] = mapped_column(primary_key=True)
        name: Mapped[str] = mapped_column(String(50))

    class Animal(Base):
        __tablename__ = "animal"
        id: Mapped[int] = mapped_column(primary_key=True)
        kind: Mapped[str] = mapped_column(String(20))
        nickname: Mapped[str | None] = mapped_column(String(50))
        owner_id: Mapped[int | None] = mapped_column(ForeignKey("owner.id"))
        owner: Mapped[Owner | None] = relationship()
        __mapper_args__ = {"polymorphic_on": "kind", "polymorphic_identity": "animal"}  # noqa: RUF012

    class Dog(Animal):
        __tablename__ = "dog"
        id: Mapped[int] = mapped_column(ForeignKey("animal.id"), primary_key=True)
        barks: Mapped[bool] = mapped_column()
        __mapper_args__ = {"polymorphic_identity": "dog"}  # noqa: RUF012

    # A class name with a quote and a backslash: labels must be escaped for dot.
    quoted = type(
        'Odd"Name\\', (Base,), {"__tablename__": "odd", "id": mapped_column(Integer, primary_key=True)}
    )

    module = types.ModuleType("zoo_models")
    for cls in (Base, Owner, Animal, Dog):
        setattr(module, cls.__name__, cls)
    module.Quoted = quoted  # type: ignore[attr-defined]
    return module


def _run(monkeypatch, capsys, *argv: str) -> str:
    monkeypatch.setattr(sys, "argv", ["models_graph", *argv])
    generate_model_graph(_models())
    return capsys.readouterr().out


def test_graph_lists_own_columns_and_parents(monkeypatch, capsys):
    """Each class shows its own columns (nullable ones marked), relationships and edges to its parents."""
    out = _run(monkeypatch, capsys)
    assert out.startswith("digraph {\n  rankdir=BT;")
    assert (
        '  "Animal" [label="Animal\\n\\nid\\lkind\\lnickname [null]\\lowner_id [null]\\lowner -> Owner\\l"];'
        in out
    )
    # Dog maps only ``barks`` itself: ``id``, ``kind``... come from Animal.
    assert '  "Dog" [label="Dog\\n\\nbarks\\l"];' in out
    assert '  "Dog" -> "Animal";' in out
    assert '  "Animal" -> "Base";' in out
    assert '  "Animal" -> "Owner" [style=dashed, label="owner"];' in out
    assert '  "Odd\\"Name\\\\" -> "Base";' in out


def test_graph_renders_with_dot(monkeypatch, capsys):
    """Graphviz's ``dot`` accepts the output and draws every class, even with quotes in names."""
    dot = shutil.which("dot")
    if dot is None:
        pytest.fail("Graphviz 'dot' is not installed (Debian package graphviz)")
    out = _run(monkeypatch, capsys)
    result = subprocess.run([dot, "-Tsvg"], input=out, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    svg = result.stdout
    for name in ("Base", "Owner", "Animal", "Dog", "barks", "owner &#45;&gt; Owner", "Odd&quot;Name\\"):
        assert f">{name}<" in svg


def test_root_class_from_argument(monkeypatch, capsys):
    """A class name as argument limits the graph to that class and its subclasses."""
    out = _run(monkeypatch, capsys, "Animal")
    assert "Animal\\n" in out
    assert "Dog\\n" in out
    assert "Owner\\n" not in out
    # The relationship target is outside the graph: no dangling dashed edge.
    assert "dashed" not in out


def test_wrong_argument_count(monkeypatch, capsys):
    """More than one argument prints the usage and exits with code 1."""
    monkeypatch.setattr(sys, "argv", ["models_graph", "A", "B"])
    with pytest.raises(SystemExit) as exit_info:
        generate_model_graph(_models())
    assert exit_info.value.code == 1
    assert capsys.readouterr().err.startswith("Usage: models_graph [ROOT_CLASS]")


def test_unknown_root_class(monkeypatch, capsys):
    """An unknown root class name is reported on one line, with exit code 1."""
    monkeypatch.setattr(sys, "argv", ["models_graph", "Nope"])
    with pytest.raises(SystemExit) as exit_info:
        generate_model_graph(_models())
    assert exit_info.value.code == 1
    assert capsys.readouterr().err == "zoo_models has no class named Nope\n"
