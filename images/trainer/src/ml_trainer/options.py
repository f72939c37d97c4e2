"""Command-line options declared once, on the dataclasses the commands take.

A field declared with `option(...)` is a flag of its command: `--<name-with-dashes>`, parsed by
its `Kind` (which also says the value's JSON schema), with its default and help. A field
declared with `field(metadata=nested(Cls))` takes the options of another dataclass at the same level (the
`train` command's `Hyperparameters`, `validate`'s `Thresholds`). From one declaration:

- `add_arguments(parser, Cls)` adds the flags to an argparse parser (help with the default);
- `from_namespace(Cls, args)` builds the dataclass from the parsed arguments;
- `describe(Cls)` is the JSON-able description the DAGs read (`trainer_options.json`).

No heavy imports here: building the parser must stay fast (`trainer --help`, `validate`).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
from collections.abc import Callable, Mapping, Sequence
from dataclasses import MISSING, dataclass, field
from typing import Any

from ml_trainer.errors import TrainerError

OPTION_KEY = "ml_trainer.option"
NESTED_KEY = "ml_trainer.nested"


# ---------------------------------------------------------------------------- value parsers
def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def unit_interval(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be within [0, 1], got {text}")
    return value


def open_fraction(text: str) -> float:
    value = float(text)
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"must be strictly between 0 and 1, got {text}")
    return value


def iso_date(text: str) -> str:
    try:
        return datetime.date.fromisoformat(text).isoformat()
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a date YYYY-MM-DD, got {text!r}") from None


def s3_uri(text: str) -> str:
    from ml_trainer.storage import S3Uri

    try:
        S3Uri.parse(text)
    except TrainerError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def hidden_sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        sizes = ()
    if not sizes or any(s <= 0 for s in sizes):
        raise argparse.ArgumentTypeError(
            f"must be comma-separated positive integers like 256,256, got {text!r}"
        )
    return sizes


def version_number(text: str) -> str:
    return str(positive_int(text))


# ---------------------------------------------------------------------------- kinds of value
@dataclass(frozen=True)
class Kind:
    """How a flag's text becomes a value (`parse`, argparse's `type`), the JSON schema of that
    value as the DAGs pass it, and how a value is written back on a command line (`text`)."""

    parse: Callable[[str], Any]
    schema: Mapping[str, Any]
    text: Callable[[Any], str] = str


TEXT = Kind(str, {"type": "string"})
INTEGER = Kind(int, {"type": "integer"})
NUMBER = Kind(float, {"type": "number"})
POSITIVE_FLOAT = Kind(positive_float, {"type": "number", "exclusiveMinimum": 0})
POSITIVE_INT = Kind(positive_int, {"type": "integer", "minimum": 1})
NON_NEGATIVE_INT = Kind(non_negative_int, {"type": "integer", "minimum": 0})
UNIT_INTERVAL = Kind(unit_interval, {"type": "number", "minimum": 0, "maximum": 1})
OPEN_FRACTION = Kind(
    open_fraction, {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1}
)
ISO_DATE = Kind(iso_date, {"type": "string", "format": "date"})
S3_URI = Kind(s3_uri, {"type": "string", "pattern": "^s3://[^/]+/"})
HIDDEN_SIZES = Kind(
    hidden_sizes,
    {"type": "string", "pattern": "^[1-9][0-9]*(,[1-9][0-9]*)*$"},
    text=lambda sizes: ",".join(str(s) for s in sizes),
)
VERSION_NUMBER = Kind(version_number, {"type": "integer", "minimum": 1})
SWITCH = Kind(bool, {"type": "boolean"})  # a flag without a value (store_true)


@dataclass(frozen=True)
class Option:
    """What `option()` records on a field."""

    help: str
    kind: Kind = TEXT
    choices: tuple[str, ...] | None = None
    searchable: bool = False  # the DAGs may sweep it (docs/pipeline.md, the search space)
    short: str | None = None  # its part of a trial id (`lr` -> `lr0.001`; "" -> the value alone)


def option(
    default: Any = MISSING,
    *,
    help: str,
    kind: Kind = TEXT,
    choices: Sequence[str] | None = None,
    searchable: bool = False,
    short: str | None = None,
) -> Any:
    """A dataclass field that is a command-line option (no default: a required flag)."""
    meta = Option(help, kind, tuple(choices) if choices else None, searchable, short)
    return field(default=default, metadata={OPTION_KEY: meta})


def nested(cls: type) -> dict[str, type]:
    """The metadata of a field holding another options dataclass, whose flags join this
    command's: `thresholds: Thresholds = field(metadata=nested(Thresholds))`."""
    return {NESTED_KEY: cls}


@dataclass(frozen=True)
class Flag:
    """One flag of a command, flattened out of nested dataclasses."""

    name: str
    option: Option
    default: Any  # MISSING: required

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def required(self) -> bool:
        return self.default is MISSING

    def schema(self) -> dict[str, Any]:
        if self.option.choices is not None:
            return {"type": "string", "enum": list(self.option.choices)}
        return dict(self.option.kind.schema)


def flags(cls: type) -> list[Flag]:
    """The flags of an options dataclass, in declaration order, nested ones in place."""
    out: list[Flag] = []
    for f in dataclasses.fields(cls):
        if NESTED_KEY in f.metadata:
            out += flags(f.metadata[NESTED_KEY])
        elif OPTION_KEY in f.metadata:
            out.append(Flag(f.name, f.metadata[OPTION_KEY], f.default))
    return out


def _help(flag: Flag) -> str:
    text = flag.option.help
    if flag.required or flag.default in (None, "") or flag.option.kind is SWITCH:
        return text.replace("%", "%%")
    return f"{text} (default {flag.option.kind.text(flag.default)})".replace("%", "%%")


def add_arguments(parser: argparse.ArgumentParser, cls: type) -> None:
    for flag in flags(cls):
        if flag.option.kind is SWITCH:
            parser.add_argument(flag.flag, action="store_true", help=_help(flag))
            continue
        parser.add_argument(
            flag.flag,
            dest=flag.name,
            type=flag.option.kind.parse,
            choices=flag.option.choices,
            required=flag.required,
            default=None if flag.required else flag.default,
            help=_help(flag),
        )


def from_namespace(cls: type, args: argparse.Namespace) -> Any:
    """Build `cls` (and its nested dataclasses) from parsed arguments."""
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if NESTED_KEY in f.metadata:
            values[f.name] = from_namespace(f.metadata[NESTED_KEY], args)
        elif OPTION_KEY in f.metadata:
            values[f.name] = getattr(args, f.name)
    return cls(**values)


def describe(cls: type) -> dict[str, dict[str, Any]]:
    """The options of `cls` as JSON: flag, help, schema, required or default, searchable."""
    out: dict[str, dict[str, Any]] = {}
    for flag in flags(cls):
        entry: dict[str, Any] = {"flag": flag.flag, "help": flag.option.help}
        entry["schema"] = flag.schema()
        if flag.required:
            entry["required"] = True
        else:
            default = flag.default
            entry["default"] = (
                default
                if default is None or flag.option.kind is SWITCH
                else json_value(flag, default)
            )
        if flag.option.searchable:
            entry["searchable"] = True
            entry["short"] = flag.name if flag.option.short is None else flag.option.short
        out[flag.name] = entry
    return out


def json_value(flag: Flag, value: Any) -> Any:
    """A default as the JSON value the schema describes (a tuple of sizes -> `"256,256"`)."""
    if flag.schema().get("type") == "string":
        return flag.option.kind.text(value)
    return value
