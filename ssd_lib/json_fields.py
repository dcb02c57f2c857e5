"""A JSON round trip for the library's frozen settings dataclasses (``SSDConfig``, ``Recipe``).

A dataclass that inherits :class:`JSONFields` and normalises its fields in ``__post_init__``
(sequences to tuples, numbers to their type) loads back equal: ``C.from_json(c.to_json()) == c``.
"""

from __future__ import annotations

import dataclasses
import json

__all__ = ["JSONFields"]


def _as_json(value):
    return [_as_json(item) for item in value] if isinstance(value, tuple) else value


class JSONFields:
    """``to_dict``/``from_dict`` and ``to_json``/``from_json`` for a dataclass; errors name the class."""

    def to_dict(self) -> dict:
        """The fields as stored, as a dict of JSON values (tuples as lists)."""
        return {field.name: _as_json(getattr(self, field.name)) for field in dataclasses.fields(self)}

    @classmethod
    def check_field_names(cls, values: dict) -> None:
        """Raise ``ValueError`` naming the keys of ``values`` that are not fields of ``cls``."""
        names = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(f"{cls.__name__}: unknown field(s) {unknown}; the fields are {sorted(names)}")

    @classmethod
    def from_dict(cls, values: dict):
        """The object of :meth:`to_dict`'s output (validated as on construction); a missing field
        takes its default.

        Raises:
            ValueError: an unknown field or an invalid value (names the field).
        """
        cls.check_field_names(values)
        return cls(**values)

    def to_json(self) -> str:
        """The object as a JSON object, one field per line."""
        return json.dumps(self.to_dict(), indent=1)

    @classmethod
    def from_json(cls, text: str):
        """The object of :meth:`to_json`'s output.

        Raises:
            ValueError: not a JSON object, an unknown field or an invalid value.
        """
        try:
            values = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"{cls.__name__}: not valid JSON ({error})") from None
        if not isinstance(values, dict):
            raise ValueError(f"{cls.__name__}: expected a JSON object, got {type(values).__name__}")
        return cls.from_dict(values)
