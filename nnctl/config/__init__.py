"""The experiment spec: declared in spec.py, checked by fields.py, loaded and resolved by load.py."""

from nnctl.config.load import config_schema, load_spec, resolve_data, resolved_yaml
from nnctl.config.spec import Spec

__all__ = ["Spec", "config_schema", "load_spec", "resolve_data", "resolved_yaml"]
