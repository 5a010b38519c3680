"""Go syntax the exporter inherits: ParseFloat, ParseDuration, %g float output and metric-name escaping.

statsd_exporter is a Go program, so what it accepts as a number, a duration or a name is Go's rule, not
Python's: ``float(" 1_0 ")`` is 10.0 in Python and an error in Go. These helpers follow Go.

>>> parse_go_float("1.5e3"), parse_go_float("0x1p-2"), parse_go_float(" 1")
(1500.0, 0.25, None)
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

    >>> parse_go_float("-2"), parse_go_float("+Inf"), parse_go_float("1e999"), parse_go_float("1_0")
    (-2.0, inf, None, None)
    """
    if _DECIMAL.match(text):
        value = float(text)
        return None if math.isinf(value) else value  # out of range is an error in Go
    if _HEX.match(text):
        sign = -1.0 if text[0] == "-" else 1.0
        value = sign * float.fromhex(text.lstrip("+-"))
        return None if math.isinf(value) else value
    lowered = text.lower()
    if lowered in _INFINITIES:
        return math.copysign(math.inf, _INFINITIES[lowered])
    if lowered == "nan":
        return math.nan
    return None


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
