"""The project's declarations as data: canonical tables, source mappings and interfaces,
vocabularies, matching rules, survivorship, the published warehouse.

A package so that it ships with the code: `pip install .` (not only an editable install)
carries these files, and `schema_file` finds them with importlib.resources wherever the
package was installed, instead of a path relative to the source checkout.
"""

from importlib.resources import files
from importlib.resources.abc import Traversable


def schema_file(*parts: str) -> Traversable:
    """A file of this package, e.g. `schema_file("mapping", "national.yaml")`."""
    return files(__name__).joinpath(*parts)
