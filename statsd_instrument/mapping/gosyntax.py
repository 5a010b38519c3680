"""Go syntax the exporter inherits: ParseFloat, ParseDuration, %g float output and metric-name escaping.

statsd_exporter is a Go program, so what it accepts as a number, a duration or a name is Go's rule, not
Python's: ``float(" 1_0 ")`` is 10.0 in Python and an error in Go (``1_0`` alone is 10 in both: Go allows
``_`` between digits). These helpers follow Go.

>>> parse_go_float("1.5e3"), parse_go_float("0x1p-2"), parse_go_float(" 1"), parse_go_float("1_000")
(1500.0, 0.25, None, 1000.0)
>>> parse_go_duration("1m30s"), format_go_float(1e6), escape_metric_name("a.b-c")
(90.0, '1e+06', 'a_b_c')
"""

from __future__ import annotations

import math
import re

_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z")
_HEX = re.compile(r"[+-]?0[xX](?:[0-9a-fA-F]+(?:\.[0-9a-fA-F]*)?|\.[0-9a-fA-F]+)[pP][+-]?[0-9]+\Z")
_INFINITIES = {"inf": 1.0, "+inf": 1.0, "-inf": -1.0, "infinity": 1.0, "+infinity": 1.0, "-infinity": -1.0}
_DURATION_PART = re.compile(r"([0-9]*(?:\.[0-9]*)?)(ns|us|\u00b5s|\u03bcs|ms|s|m|h)")
_DURATION_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "\u00b5s": 1e-6,
    "\u03bcs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_VALID_NAME_CHAR = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")


def parse_go_float(text: str) -> float | None:
    """The value of ``text`` as Go's ``strconv.ParseFloat(text, 64)`` reads it, or None if Go refuses it.

    >>> parse_go_float("-2"), parse_go_float("+Inf"), parse_go_float("1e999"), parse_go_float("1__0")
    (-2.0, inf, None, None)
    """
    value, ok = parse_go_float_result(text)
    return value if ok else None


def parse_go_float_result(text: str) -> tuple[float, bool]:
    """``strconv.ParseFloat(text, 64)`` with Go's value on error: 0 for bad syntax, +-Inf when out of range.

    statsd_exporter uses the value even when ParseFloat failed (a sample rate of ``@1e999`` is counted as
    invalid and then divides by +Inf).

    >>> parse_go_float_result("1e999"), parse_go_float_result("x"), parse_go_float_result("2_5e-2")
    ((inf, False), (0.0, False), (0.25, True))
    """
    special = _special(text)
    if special is not None:
        return special, True
    if "_" in text:
        if not _underscores_ok(text):
            return 0.0, False
        text = text.replace("_", "")
    if _DECIMAL.match(text):
        value = float(text)
    elif _HEX.match(text):
        sign = -1.0 if text[0] == "-" else 1.0
        try:
            value = sign * float.fromhex(text.lstrip("+-"))
        except OverflowError:
            value = sign * math.inf
    else:
        return 0.0, False
    return value, not math.isinf(value)  # out of range: +-Inf and an error in Go


def _special(text: str) -> float | None:
    lowered = text.lower()
    if lowered in _INFINITIES:
        return math.copysign(math.inf, _INFINITIES[lowered])
    if lowered == "nan":
        return math.nan
    return None


def _underscores_ok(text: str) -> bool:
    """Go's rule for ``_`` in a number: only between two digits, or between a base prefix and a digit."""
    body = text[1:] if text[:1] in ("+", "-") else text
    hexadecimal = body[:2].lower() == "0x"
    previous = "digit" if body[:2].lower() in ("0x", "0b", "0o") else "start"
    for char in body[2:] if previous == "digit" else body:
        if (char.isdigit() and char.isascii()) or (hexadecimal and char.lower() in "abcdef"):
            previous = "digit"
        elif char == "_":
            if previous != "digit":
                return False
            previous = "_"
        elif previous == "_":
            return False
        else:
            previous = "other"
    return previous != "_"


def parse_go_duration(text: str) -> float:
    """Seconds in a Go duration string (``"90s"``, ``"1h30m"``, ``"500ms"``); ValueError if Go refuses it.

    >>> parse_go_duration("1.5h"), parse_go_duration("0")
    (5400.0, 0.0)
    >>> parse_go_duration("60")
    Traceback (most recent call last):
    ...
    ValueError: invalid duration '60': missing unit (write '60s')
    """
    body = text
    sign = 1.0
    if body[:1] in ("+", "-"):
        sign = -1.0 if body[0] == "-" else 1.0
        body = body[1:]
    if body == "0":
        return 0.0
    if not body:
        raise ValueError(f"invalid duration {text!r}")
    total = 0.0
    pos = 0
    while pos < len(body):
        found = _DURATION_PART.match(body, pos)
        if not found or found.group(1) in ("", "."):
            if re.fullmatch(r"[0-9.]+", body[pos:]):
                raise ValueError(f"invalid duration {text!r}: missing unit (write '{text}s')")
            raise ValueError(f"invalid duration {text!r}")
        total += float(found.group(1)) * _DURATION_UNITS[found.group(2)]
        pos = found.end()
    return sign * total


def format_go_float(value: float) -> str:
    """``value`` as Go's ``strconv.FormatFloat(v, 'g', -1, 64)`` writes it (the exposition format's floats).

    >>> [format_go_float(v) for v in (0.005, 1.0, 2.5e-05, 123456.0, 1234567.0, float("inf"))]
    ['0.005', '1', '2.5e-05', '123456', '1.234567e+06', '+Inf']
    """
    if value != value:
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    text = repr(value)
    sign = ""
    if text[0] == "-":
        sign, text = "-", text[1:]
    mantissa, _, exp_text = text.partition("e")
    int_part, _, frac = mantissa.partition(".")
    digits = int_part + frac
    point = len(int_part) + (int(exp_text) if exp_text else 0)
    stripped = digits.lstrip("0")
    point -= len(digits) - len(stripped)
    digits = stripped.rstrip("0") or "0"
    exponent = point - 1
    # Go's shortest %g switches to exponent form below 1e-4 and from 1e+06 upwards.
    if exponent < -4 or exponent >= 6:
        body = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        exp_sign = "-" if exponent < 0 else "+"
        return f"{sign}{body}e{exp_sign}{abs(exponent):02d}"
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return sign + digits + "0" * (point - len(digits))
    return f"{sign}{digits[:point]}.{digits[point:]}"


def escape_metric_name(name: str) -> str:
    """``name`` with every character outside ``[a-zA-Z0-9_]`` replaced by ``_`` (statsd_exporter's rule).

    A leading digit gets a ``_`` prefix; a run of dashes becomes a single ``_``.

    >>> escape_metric_name("http.requests"), escape_metric_name("2xx"), escape_metric_name("a--b")
    ('http_requests', '_2xx', 'a_b')
    """
    if not name:
        return ""
    if all(c in _VALID_NAME_CHAR for c in name) and not name[0].isdigit():
        return name
    out = ["_"] if "0" <= name[0] <= "9" else []
    previous = ""
    for char in name:
        if char in _VALID_NAME_CHAR:
            out.append(char)
        elif not (char == "-" and previous == "-"):
            out.append("_")
        previous = char
    return "".join(out)


_YAML_WORDS: dict = {
    **dict.fromkeys(("y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"), True),
    **dict.fromkeys(("n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"), False),
    **dict.fromkeys(("", "~", "null", "Null", "NULL"), None),
    **dict.fromkeys((".nan", ".NaN", ".NAN"), math.nan),
    **dict.fromkeys((".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"), math.inf),
    **dict.fromkeys(("-.inf", "-.Inf", "-.INF"), -math.inf),
}
_YAML_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?\Z")
_INT_BASES = {"0x": (16, "0123456789abcdefABCDEF"), "0b": (2, "01"), "0o": (8, "01234567")}


def _parse_go_int(text: str) -> int | None:
    """Go's ``strconv.ParseInt(text, 0, 64)``, falling back to ``ParseUint`` (no ``_`` left in ``text``)."""
    body = text[1:] if text[:1] in ("+", "-") else text
    base, digits = 10, "0123456789"
    if body[:2].lower() in _INT_BASES:
        base, digits = _INT_BASES[body[:2].lower()]
        body = body[2:]
    elif len(body) > 1 and body[0] == "0":
        base, digits = 8, "01234567"
    if not body or any(c not in digits for c in body):
        return None
    value = int(body, base) * (-1 if text[0] == "-" else 1)
    if -(2**63) <= value < 2**63 or (text[0] not in "+-" and 0 <= value < 2**64):
        return value
    return None


def resolve_go_yaml(text: str) -> object:
    """An unquoted YAML scalar as Go's gopkg.in/yaml.v2 (v2.4.0, the exporter's) reads it.

    YAML 1.1 as yaml.v2 implements it, which is not PyYAML's: ``y``/``n``/``on``/``off`` are booleans, ``_``
    is dropped from numbers, ``0o17`` is octal, ``1e3`` is a float (a string for PyYAML) and ``1:30`` is a
    string (90 for PyYAML). Timestamps stay strings (no number field takes them either way).

    >>> [resolve_go_yaml(t) for t in ("y", "1_000", "0o17", "1e3", "1:30", "08", ".5", "1e999", "~")]
    [True, 1000, 15, 1000.0, '1:30', 8.0, 0.5, '1e999', None]
    """
    if text in _YAML_WORDS:
        return _YAML_WORDS[text]
    hint = text[0]
    if hint == ".":
        value, ok = parse_go_float_result(text)
        return value if ok else text
    if not (hint in "+-" or "0" <= hint <= "9"):
        return text
    plain = text.replace("_", "")
    number = _parse_go_int(plain)
    if number is not None:
        return number
    if _YAML_FLOAT.match(plain):
        value, ok = parse_go_float_result(plain)
        if ok:
            return value
    return text
