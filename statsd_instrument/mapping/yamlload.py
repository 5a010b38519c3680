"""A pyyaml loader that remembers where each mapping key and list item was written (1-based lines).

Findings about a mapping file must say ``FILE:LINE``; plain ``yaml.safe_load`` forgets positions, so this
loader returns ``LinedDict``/``LinedList`` objects that carry them, plus each scalar's raw text (Go's yaml
decoder puts the raw text of any scalar into a string field: ``help: yes`` is ``"yes"``, not ``True``).
Unquoted scalars are read as the exporter's Go YAML library reads them (``resolve_go_yaml``), not as
PyYAML would: ``1e3`` is a number, ``y`` a boolean; a quoted scalar is always a string.

>>> doc = load_yaml("a: 1\\nb:\\n  - x\\n  - y\\n")
>>> doc.line, doc.key_lines["b"], doc["b"].item_lines, doc.raw["a"]
(1, 2, [3, 4], '1')
"""

from __future__ import annotations

from typing import Any

import yaml

from statsd_instrument.mapping.gosyntax import resolve_go_yaml

_GO_PLAIN = "tag:statsd-instrument,2024:go-plain"


class LinedDict(dict):
    """A dict from YAML that knows its own line, each key's line and each scalar value's raw text.

    >>> load_yaml("\\nx: yes\\n").raw["x"]
    'yes'
    """

    line: int = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.key_lines: dict[Any, int] = {}
        self.raw: dict[Any, str] = {}
        self.duplicates: list[tuple[Any, int]] = []


class LinedList(list):
    """A list from YAML that knows its own line and each item's line.

    >>> load_yaml("- a\\n- b\\n").line
    1
    """

    line: int = 0

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.item_lines: list[int] = []


class _LinedLoader(yaml.SafeLoader):
    def resolve(self, kind: type, value: Any, implicit: Any) -> str:
        if kind is yaml.ScalarNode and implicit[0] and value != "<<":
            return _GO_PLAIN  # an unquoted, untagged scalar: Go's rules decide what it is
        return super().resolve(kind, value, implicit)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> LinedDict:
        out = LinedDict()
        out.line = node.start_mark.line + 1
        self.flatten_mapping(node)
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                hash(key)
            except TypeError:
                raise yaml.constructor.ConstructorError(
                    None, None, "found an unhashable key", key_node.start_mark
                ) from None
            if key in out:
                out.duplicates.append((key, key_node.start_mark.line + 1))
            out[key] = self.construct_object(value_node, deep=True)
            out.key_lines[key] = key_node.start_mark.line + 1
            if isinstance(value_node, yaml.ScalarNode):
                out.raw[key] = value_node.value
        return out

    def construct_sequence(self, node: yaml.SequenceNode, deep: bool = False) -> LinedList:
        out = LinedList(self.construct_object(child, deep=True) for child in node.value)
        out.line = node.start_mark.line + 1
        out.item_lines = [child.start_mark.line + 1 for child in node.value]
        return out


_LinedLoader.add_constructor("tag:yaml.org,2002:map", _LinedLoader.construct_mapping)
_LinedLoader.add_constructor("tag:yaml.org,2002:seq", _LinedLoader.construct_sequence)
_LinedLoader.add_constructor(_GO_PLAIN, lambda loader, node: resolve_go_yaml(node.value))


def load_yaml(text: str) -> Any:
    """Parse YAML text into plain values with ``LinedDict``/``LinedList`` containers; yaml.YAMLError if bad.

    >>> load_yaml("[1, 2]").item_lines
    [1, 1]
    """
    return yaml.load(text, Loader=_LinedLoader)
