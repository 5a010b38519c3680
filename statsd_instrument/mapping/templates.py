"""``$1`` / ``${1}`` templates in mapping names and labels, with Go's semantics, and the RE2 regex subset.

Two expanders exist in statsd_exporter and they differ: glob rules use a formatter that only knows numbered
captures, regex rules use Go's ``regexp.Expand`` (numbers and group names). Both read ``$1_total`` as a
reference to a group named ``1_total``, which does not exist, so it expands to nothing: write ``${1}_total``.

>>> expand_glob("${1}_total", ["api"]), expand_glob("$1_total", ["api"])
('api_total', '')
>>> import re
>>> m = re.search(r"^(?P<svc>\\w+)\\.(\\w+)$", "api.hits")
>>> expand_regex("${svc}_$2", m), expand_regex("$1_x", m)
('api_hits', '')
"""

from __future__ import annotations

import re
from typing import Match, Sequence

# The glob formatter's reference syntax: `$` then an optional `{`, a run of name characters (including `$`),
# an optional `}`. Only a purely numeric name within the capture count is substituted; anything else is
# removed.
GLOB_REFERENCE = re.compile(r"\$\{?([a-zA-Z0-9_$]+)\}?")
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")


def expand_glob(template: str, captures: Sequence[str]) -> str:
    """Expand a glob rule's ``name``/label template with the ``*`` captures (1-based references).

    Like statsd_exporter v0.28.0's formatter: each reference found is replaced everywhere by a ``%s`` verb
    (or by nothing when it is not a capture number), then the result goes through Go's ``fmt.Sprintf``
    with the captures. So a ``%`` of a template with references is a verb: ``${1}%`` renders as
    ``api%!(NOVERB)``; a template without references is kept as written.

    >>> expand_glob("$1.$2.${3}", ["a", "b"]), expand_glob("${1}%", ["api"]), expand_glob("100%", ["api"])
    ('a.b.', 'api%!(NOVERB)', '100%')
    """
    matches = [(m.group(0), m.group(1)) for m in GLOB_REFERENCE.finditer(template)] if "$" in template else []
    if not matches:
        return template
    pattern = template
    indexes = []
    for whole, ref in matches:
        index = int(ref) if ref.isdigit() and ref.isascii() and len(ref) < 19 else 0
        if 1 <= index <= len(captures):
            pattern = pattern.replace(whole, "%s")
            indexes.append(index - 1)
        else:
            pattern = pattern.replace(whole, "")
    if not indexes:
        return pattern
    return go_sprintf(pattern, [captures[i] for i in indexes])


_VERB = re.compile(r"%([-+# 0]*)([0-9]*)(?:\.([0-9]*))?(.?)", re.DOTALL)


def go_sprintf(pattern: str, args: Sequence[str]) -> str:
    """Go's ``fmt.Sprintf(pattern, args...)`` for string arguments, error notes included.

    ``%s``/``%v`` (with width, precision and ``-``), ``%q``, ``%x``/``%X`` and ``%%`` are formatted; any
    other verb writes ``%!c(string=...)``, a missing argument ``%!c(MISSING)``, a lone ``%`` at the end
    ``%!(NOVERB)`` and unused arguments ``%!(EXTRA string=...)``.

    >>> go_sprintf("%s-%d %5s|%-3s|%.2s %%", ["a", "b", "c", "d", "efg"])
    'a-%!d(string=b)     c|d  |ef %'
    >>> go_sprintf("%s %s", ["a"]), go_sprintf("x", ["a", "b"])
    ('a %!s(MISSING)', 'x%!(EXTRA string=a, string=b)')
    """
    out = []
    next_arg = 0
    pos = 0
    while True:
        percent = pattern.find("%", pos)
        if percent < 0:
            out.append(pattern[pos:])
            break
        out.append(pattern[pos:percent])
        found = _VERB.match(pattern, percent)
        assert found is not None  # every part of the pattern is optional
        flags, width, precision, verb = found.groups()
        pos = found.end()
        if not verb:
            out.append("%!(NOVERB)")
            break
        if verb == "%":
            out.append("%")
            continue
        if next_arg >= len(args):
            out.append(f"%!{verb}(MISSING)")
            continue
        arg = args[next_arg]
        next_arg += 1
        if verb in "sv":
            text = arg[: int(precision)] if precision else ("" if precision == "" else arg)
        elif verb == "q":
            text = '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'
        elif verb in "xX":
            text = arg.encode().hex()
            text = text.upper() if verb == "X" else text
        else:
            out.append(f"%!{verb}(string={arg})")
            continue
        pad = int(width) - len(text) if width else 0
        out.append(text + " " * pad if "-" in flags else " " * pad + text)
    if next_arg < len(args):
        out.append("%!(EXTRA " + ", ".join(f"string={a}" for a in args[next_arg:]) + ")")
    return "".join(out)


def glob_references(template: str) -> list[str]:
    """The reference names a glob template contains, as the formatter reads them.

    >>> glob_references("${1}_$2_total")
    ['1', '2_total']
    """
    return GLOB_REFERENCE.findall(template)


def _extract(template: str, pos: int) -> tuple[str, int] | None:
    """Go's regexp ``extract``: the name after ``$`` at ``pos`` and the position after it, or None."""
    if pos >= len(template):
        return None
    braced = template[pos] == "{"
    start = pos + 1 if braced else pos
    end = start
    while end < len(template) and template[end] in _NAME_CHARS:
        end += 1
    if end == start:
        return None
    if braced:
        if end >= len(template) or template[end] != "}":
            return None
        return template[start:end], end + 1
    return template[start:end], end


def regex_references(template: str) -> list[str]:
    """The group names/numbers a regex rule's template refers to, as Go's ``Expand`` reads them.

    >>> regex_references("$1_total-${2}-$$")
    ['1_total', '2']
    """
    names: list[str] = []
    pos = 0
    while True:
        dollar = template.find("$", pos)
        if dollar < 0:
            return names
        if template[dollar + 1 : dollar + 2] == "$":
            pos = dollar + 2
            continue
        extracted = _extract(template, dollar + 1)
        if extracted is None:
            pos = dollar + 1
            continue
        names.append(extracted[0])
        pos = extracted[1]


def _group_number(name: str) -> int:
    """Go's rule: all digits (and below 1e8) is a group number; anything else is a group name (-1)."""
    number = 0
    for char in name:
        if not ("0" <= char <= "9") or number >= 100_000_000:
            return -1
        number = number * 10 + ord(char) - 48
    return number


def expand_regex(template: str, found: Match[str]) -> str:
    """Expand a regex rule's template against a match like Go's ``regexp.Expand``.

    ``$$`` is a literal ``$``; a malformed reference keeps its ``$``; an unknown group expands to nothing.

    >>> import re
    >>> expand_regex("x_$$_${1}_$", re.search("(a)", "a"))
    'x_$_a_$'
    """
    if "$" not in template:
        return template
    out = []
    pos = 0
    while True:
        dollar = template.find("$", pos)
        if dollar < 0:
            out.append(template[pos:])
            return "".join(out)
        out.append(template[pos:dollar])
        if template[dollar + 1 : dollar + 2] == "$":
            out.append("$")
            pos = dollar + 2
            continue
        extracted = _extract(template, dollar + 1)
        if extracted is None:
            out.append("$")
            pos = dollar + 1
            continue
        name, pos = extracted
        number = _group_number(name)
        value = None
        if number >= 0:
            if number <= (found.re.groups):
                value = found.group(number)
        elif name in found.re.groupindex:
            value = found.group(name)
        out.append(value or "")


# Constructs Python's `re` accepts and RE2 (Go's regexp) refuses, so a mapping that works here fails there.
_RE2_REFUSES = [
    (re.compile(r"\(\?[=!]"), "lookahead (?= / (?! is not supported by RE2"),
    (re.compile(r"\(\?<[=!]"), "lookbehind (?<= / (?<! is not supported by RE2"),
    (re.compile(r"\(\?>"), "atomic groups (?> are not supported by RE2"),
    (re.compile(r"\(\?\("), "conditionals (?(...) are not supported by RE2"),
    (re.compile(r"(?<!\\)\\[1-9]"), "backreferences (\\1) are not supported by RE2"),
    (re.compile(r"\(\?P=\w+\)"), "named backreferences (?P=name) are not supported by RE2"),
    (re.compile(r"(?<!\\)\\Z"), "\\Z is not supported by RE2 (use \\z or $)"),
    (re.compile(r"[*+?}][+]"), "possessive quantifiers are not supported by RE2"),
]


def compile_re2(pattern: str) -> re.Pattern[str]:
    """Compile a Go (RE2) regular expression with Python's ``re``; ValueError if either engine refuses it.

    Go's ``(?<name>...)`` and ``\\z`` are translated; constructs RE2 lacks are refused with the reason.

    >>> compile_re2(r"^(?<svc>\\w+)\\.hits\\z").pattern
    '^(?P<svc>\\\\w+)\\\\.hits\\\\Z'
    >>> compile_re2(r"(a)\\1")
    Traceback (most recent call last):
    ...
    ValueError: backreferences (\\1) are not supported by RE2
    """
    for check, reason in _RE2_REFUSES:
        if check.search(pattern):
            raise ValueError(reason)
    translated = re.sub(r"\(\?<(?![=!])", "(?P<", pattern)
    translated = re.sub(r"(?<!\\)((?:\\\\)*)\\z", r"\1\\Z", translated)
    try:
        return re.compile(translated)
    except re.error as err:
        raise ValueError(str(err)) from None
