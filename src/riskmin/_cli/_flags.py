"""Flags as the settings they stand for: the text of each flag in the type its Config field declares.

Shared by the parser (_main.py) and the commands (_commands.py), so that neither imports the other.
"""

from __future__ import annotations

import argparse
import typing

from ..config import FIELDS, Config, RiskminError, fact, field_type, read_toml

TRUE, FALSE = ("on", "true", "yes", "1"), ("off", "false", "no", "0")


def parse_value(name: str, text: str):
    """Turn the text of a flag into the type its Config field declares."""
    kind = field_type(name)
    if text == "custom" and fact(name, "custom"):  # an object of one's own, which Python alone passes
        chosen = [value for value in typing.get_args(kind) if value != "custom"]
        raise RiskminError(
            f"--{name} custom stands for {fact(name, 'custom')}; the command line takes {', '.join(chosen)}"
        )
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
    values = read_toml(args.config) if args.config else {}
    tables = [key for key, value in values.items() if isinstance(value, dict)]
    if tables:  # a comparison's settings: one table a candidate
        raise RiskminError(
            f"{args.config} holds the tables of a comparison's candidates ({', '.join(tables)}); run it with "
            f"riskmin compare --config {args.config}"
        )
    if values:
        Config.from_dict(values, source=args.config)  # unknown keys and bad values are named with the file
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
