"""``python -m twinjax --help``: the experiments, one line each, and the main config groups;
``python -m twinjax experiment=NAME --help``: that experiment's options with their defaults and
docs. Everything comes from the dataclasses (``experiments/config.py``, ``twinjax/config.py``),
so the help cannot drift from the options. Hydra's own help stays at ``--hydra-help``."""

import dataclasses
import inspect
import re
import textwrap
import typing

from twinjax.config import (
    DataConfig,
    ModelConfig,
    TrainConfig,
    experiments,
    is_optional,
    literal_choices,
)

USAGE = "usage: python -m twinjax [experiment=NAME] [group=option] [key=value ...] [--multirun]"


def _first_line(cls, width: int = 0) -> str:
    """The docstring's first paragraph; with ``width``, its first clause, cut to that width."""
    text = " ".join((inspect.getdoc(cls) or "").split("\n\n")[0].split())
    if not width:
        return text
    clause = re.split(r"(?<=[a-z)])[.;] ", text.replace("e.g. ", "e.g.\0"))[0].rstrip(".")
    clause = clause.replace("e.g.\0", "e.g. ")
    return clause if len(clause) <= width else clause[: width - 3].rstrip() + "..."


def field_notes(cls) -> dict[str, str]:
    """Each field's notes in the dataclass's source (and its dataclass bases', for the fields it
    inherits): the comment lines right above it and its trailing ``# comment``, joined."""
    notes = {}
    for base in reversed(cls.__mro__[:-1]):
        if dataclasses.is_dataclass(base):
            notes.update(_own_notes(base))
    return notes


def _own_notes(cls) -> dict[str, str]:
    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):
        return {}
    notes, above = {}, []
    for line in source.splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            above.append(stripped.lstrip("# "))
            continue
        field = re.match(r"^\s+(\w+):[^#\n]*?(?:#\s*(.+))?$", line)
        if field and not stripped.startswith(("def ", "@", "return")):
            text = " ".join([*above, *([field.group(2)] if field.group(2) else [])])
            if text:
                notes[field.group(1)] = text
        above = []
    return notes


def _fields(cls, width: int = 100, prefix: str = "", values=None) -> list[str]:
    """``name=default`` per field, each followed by its notes wrapped to ``width``; a nested
    dataclass (e.g. ``nuts``) as a ``nuts.KEY:`` line with its note, then its own fields
    (``nuts.num_warmup=1000``) with the defaults the enclosing class gives them."""
    notes, hints = field_notes(cls), typing.get_type_hints(cls)
    lines = []
    for f in dataclasses.fields(cls):
        if f.name == "name":
            continue
        choices = _choices(hints[f.name])
        if values is not None:
            default = getattr(values, f.name)
        elif f.default is not dataclasses.MISSING:
            default = f.default
        else:
            default = f.default_factory()
        nested = dataclasses.is_dataclass(default)
        lines.append(f"  {prefix}{f.name}.KEY:" if nested else f"  {prefix}{f.name}={default!r}")
        text = " ".join([notes.get(f.name, ""), choices]).strip()
        if text:
            lines += textwrap.wrap(text, width, initial_indent="      ",
                                   subsequent_indent="      ")  # fmt: skip
        if nested:
            lines += _fields(type(default), width, f"{prefix}{f.name}.", default)
    return lines


def _choices(hint) -> str:
    """``(one of: a, b)`` for a Literal hint (optional or not), else ``""``."""
    choices = literal_choices(hint)
    if choices is None:
        return ""
    null = ", null" if is_optional(hint) else ""
    return f"(one of: {', '.join(map(str, choices))}{null})"


def help_text(argv: list[str]) -> str:
    chosen = [a.split("=", 1)[1] for a in argv if a.startswith("experiment=")]
    table = {name: entry.options for name, entry in experiments().items()}
    if chosen and chosen[-1] in table:
        cls = table[chosen[-1]]
        return _plain("\n".join([
            USAGE, "", *textwrap.wrap(f"experiment={chosen[-1]}: {_first_line(cls)}", 100), "",
            "options (experiment.KEY=VALUE):", *_fields(cls),
        ]))  # fmt: skip
    width = max(map(len, table))
    groups = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig}
    return _plain("\n".join([
        USAGE, "", "experiments (experiment=NAME; NAME --help lists its options):",
        *(f"  {name:<{width}}  {_first_line(cls, 96)}" for name, cls in table.items()), "",
        "config groups (group=option, or group.KEY=VALUE):",
        "  data   synthetic | files   (data=files data.observations=obs.csv ...)",
        "  model  lstm | gru",
        "  train  default",
        "  twin   RUN_DIR             (saved twins, for experiment=forecast)",
        "  seed   an integer          (every key of the run is split from it)", "",
        *(line for g, cls in groups.items() for line in (f"{g}.KEY options:", *_fields(cls))),
        "", "Hydra's own flags: --hydra-help, --cfg job, --multirun, hydra.run.dir=DIR",
    ]))  # fmt: skip


def _plain(text: str) -> str:
    """Docstring markup (``code``, :func:`name`) as plain text for a terminal."""
    text = re.sub(r":(?:func|class|mod|meth|data|attr):`~?([^`]+)`", r"\1", text)
    return text.replace("``", "")
