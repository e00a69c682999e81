"""Config keys about data columns and files: column names or indices, delimiters, missing-value
markers, class weights, PCA components (the checks of data.* and train.class_weight)."""

from __future__ import annotations

from nnctl.config.fields import Field, Num, got


class Column(Field):
    """A CSV column: its header name or a 0-based index (negative counts from the end)."""

    def check_value(self, value, path, origins):
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise origins.error(path, f"must be a column name or index; {got(value)}")
        return value

    def value_schema(self):
        return {"type": ["string", "integer"]}


class ColumnList(Field):
    """A list of column names or indices (`allow_empty`: [] is valid, e.g. data.ignore)."""

    def __init__(self, default=None, help="", nullable=False, allow_empty=False):
        super().__init__(default, help, nullable)
        self.allow_empty = allow_empty

    def check_value(self, value, path, origins):
        if not isinstance(value, list) or (not value and not self.allow_empty):
            what = "a list" if self.allow_empty else "a non-empty list"
            raise origins.error(path, f"must be {what} of column names or indices; {got(value)}")
        for i, v in enumerate(value):
            Column().check_value(v, (*path, i), origins)
        if len({repr(v) for v in value}) != len(value):
            raise origins.error(path, "lists a column twice")
        return list(value)

    def value_schema(self):
        return {"type": "array", "items": {"type": ["string", "integer"]},
                **({} if self.allow_empty else {"minItems": 1})}


class Delimiter(Field):
    """'auto' or one character (a space means runs of spaces; 'tab' is accepted for a tab)."""

    def check_value(self, value, path, origins):
        if value == "tab":
            return "\t"
        if not isinstance(value, str) or (value != "auto" and len(value) != 1) or value in ("\n", "\r", '"'):
            raise origins.error(path, f"must be auto or one character such as ',' ';' '|' or \"\\t\" (tab); "
                                      f"{got(value)}")
        return value

    def value_schema(self):
        return {"anyOf": [{"enum": ["auto", "tab"]}, {"type": "string", "minLength": 1, "maxLength": 1}]}


class NaValues(Field):
    """'auto' or a list of strings that mean a missing value."""

    def check_value(self, value, path, origins):
        if value == "auto":
            return value
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise origins.error(path, f"must be auto or a list of strings (e.g. ['', NA, '-999']); {got(value)}")
        return list(value)

    def value_schema(self):
        return {"anyOf": [{"const": "auto"}, {"type": "array", "items": {"type": "string"}}]}


class ClassWeight(Field):
    """none | balanced | {label: weight > 0}."""

    def check_value(self, value, path, origins):
        if value in ("none", "balanced"):
            return value
        if isinstance(value, dict) and value:
            out = {}
            for label, w in value.items():
                if isinstance(label, bool):
                    raise origins.error(path, f"has the key {label}: YAML reads yes/no/on/off/true/false as "
                                              f"booleans; quote class names like these, e.g. {{'yes': 5, 'no': 1}}")
                if not isinstance(label, (str, int, float)):
                    raise origins.error(path, f"labels must be class names; got {got(label)}")
                Num(gt=0).check_value(w, (*path, label), origins)
                out[str(label) if not isinstance(label, float) or not label.is_integer() else str(int(label))] = \
                    float(w)
            return out
        raise origins.error(path, f"must be none, balanced, or a mapping of class label to weight "
                                  f"(e.g. {{fraud: 5, ok: 1}}); {got(value)}")

    def value_schema(self):
        return {"anyOf": [{"enum": ["none", "balanced"]},
                          {"type": "object", "additionalProperties": {"type": "number", "exclusiveMinimum": 0}}]}


class PcaComponents(Field):
    def check_value(self, value, path, origins):
        if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
            return value
        if isinstance(value, float) and 0 < value <= 1:
            return value
        raise origins.error(path, f"must be an integer >= 1 (components) or a variance fraction in (0, 1]; "
                                  f"{got(value)}")

    def value_schema(self):
        return {"anyOf": [{"type": "integer", "minimum": 1},
                          {"type": "number", "exclusiveMinimum": 0, "maximum": 1}]}
