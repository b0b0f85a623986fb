"""Moving data in and out of loomdb in other systems' formats.

    >>> from loomdb.interchange import export_legacy, import_legacy
    >>> import loomdb, pathlib, tempfile
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "concepts.json").write_text('{"a": {"id": "a", "content": "hello"}}')
    >>> with loomdb.open(":memory:") as db:
    ...     import_legacy(db, folder)
    {'concepts': 1, 'associations': 0, 'embeddings': 0}
"""

from .legacy import export_legacy, import_legacy

__all__ = ["export_legacy", "import_legacy"]
