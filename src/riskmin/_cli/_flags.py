"""Flags as the settings they stand for: the text of each flag in the type its Config field declares.

Shared by the parser (_main.py) and the commands (_commands.py), so that neither imports the other.
"""

from __future__ import annotations

import argparse
import json
import typing

from ..config import FIELDS, Config, RiskminError, fact, field_type, read_toml

TRUE, FALSE = ("on", "true", "yes", "1"), ("off", "false", "no", "0")


def refuse_own_code(name: str, value, said: str) -> None:
    """Refuse a value of setting `name` that stands for Python code of the user's own, which the command line cannot
    pass: a choice's "custom" (optimizer, loss, ...), or any text of metrics (name=module.function pairs), as the
    field's `custom` fact says. `said`: the value as the user gave it, a flag (--optimizer custom) or a file's key
    (optimizer = "custom" in c.toml)."""
    kind = field_type(name)
    choice = typing.get_origin(kind) is typing.Literal
    if not fact(name, "custom") or not isinstance(value, str) or not (value == "custom" if choice else value):
        return
    chosen = [each for each in typing.get_args(kind) if each != "custom"]
    takes = f"takes {', '.join(chosen)}" if choice else f"measures riskmin's own {name} alone"
    raise RiskminError(f"{said} stands for {fact(name, 'custom')}; the command line {takes}")


def refuse_own_code_in(path, values: dict, flags) -> None:
    """`refuse_own_code` on the keys of the file of settings `path` (its `values`), each named with the file: a
    top-level key unless a flag given (`flags`, their names) replaces it, a comparison's candidate table always."""
    for key, value in values.items():
        if isinstance(value, dict):
            for name, each in value.items():
                if name in FIELDS:
                    refuse_own_code(name, each, f"{name} = {json.dumps(each, ensure_ascii=False)} in [{key}] of {path}")
        elif key in FIELDS and key not in flags:
            refuse_own_code(key, value, f"{key} = {json.dumps(value, ensure_ascii=False)} in {path}")


def parse_value(name: str, text: str):
    """Turn the text of a flag into the type its Config field declares."""
    kind = field_type(name)
    refuse_own_code(name, text, f"--{name} {text}")  # an object of one's own, which Python alone passes
    try:
        if kind is bool:
            if text.lower() in TRUE or text.lower() in FALSE:
                return text.lower() in TRUE
            raise ValueError
        if kind is int:
            return int(text)
        if kind is float:
            return float(text)
        if kind is tuple:
            return tuple(int(part) for part in text.split(","))
    except ValueError:
        allowed = {
            bool: "on or off",
            int: "a whole number",
            float: "a number",
            tuple: "comma-separated whole numbers such as 64,64",
        }[kind]
        raise RiskminError(f"{name} = {text!r} is not allowed; it must be {allowed}") from None
    return text


def flags_given(args: argparse.Namespace) -> list:
    """The settings whose flags the command line was given (a flag left out is absent from `args`)."""
    return [name for name in FIELDS if name in vars(args)]


def config_from_args(args: argparse.Namespace) -> Config:
    """The Config of a command's --config file and flags, which override it: a value either gives that stands for
    Python code of one's own is refused in a sentence that names it (refuse_own_code). A batch_size either gives is
    given, the default's value too; config.toml writes a default left unset as a comment (Config.to_toml)."""
    values = read_toml(args.config) if args.config else {}
    tables = [key for key, value in values.items() if isinstance(value, dict)]
    check_not_a_curve(args.config, tables)
    if tables:  # a comparison's settings: one table a candidate
        raise RiskminError(
            f"{args.config} holds the tables of a comparison's candidates ({', '.join(tables)}); run it with "
            f"riskmin compare --config {args.config}"
        )
    if values:
        Config.from_dict(values, source=args.config)  # unknown keys and bad values are named with the file
    if values and not getattr(args, "resume", None):  # a file the user gave, not an interrupted experiment's settings
        refuse_own_code_in(args.config, values, flags_given(args))
    return flags_over(values, args)


def check_not_a_curve(path, tables: list) -> None:
    """Refuse a learning curve's config.toml, whose one table is [curve], given to another command (`tables`: the
    names of the file's tables): in a sentence that says whose it is."""
    if tables == ["curve"]:
        raise RiskminError(
            f"{path} holds a learning curve's models and sizes ([curve]); run it with riskmin curve --config {path}"
        )


def flags_over(values: dict, args: argparse.Namespace) -> Config:
    """The Config of the settings `values` (a --config file's, checked) with the flags given over them."""
    values = dict(values)
    for name in FIELDS:
        if name in vars(args):
            raw = getattr(args, name)
            raw = ",".join(raw) if isinstance(raw, list) else raw  # --target may be given more than once
            values[name] = raw if name == "data" else parse_value(name, raw)
    return Config.from_dict(values, source="the flags")


def alternatives_from_args(args: argparse.Namespace) -> dict:
    """The settings flags of `riskmin compare`, each as the list of its alternatives in the type its Config field
    declares."""
    values = {}
    for name in FIELDS:
        if name in vars(args) and name != "data":
            raw = getattr(args, name)
            raw = ",".join(raw) if isinstance(raw, list) else raw  # --target may be given more than once
            parts = [raw] if fact(name, "one_value") else raw.split("/" if name == "hidden" else ",")
            values[name] = [parse_value(name, part.strip()) for part in parts]
    return values


def parse_switch(flag: str, text: str) -> bool:
    """on/off text of a flag that is not a Config setting."""
    if text.lower() in TRUE or text.lower() in FALSE:
        return text.lower() in TRUE
    raise RiskminError(f"{flag} {text!r} is not allowed; it must be on or off")
