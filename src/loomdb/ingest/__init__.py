"""Ingestion: files and text in, documents, chunks and their links out.

``extract/`` turns a file into text with page numbers; ``chunking`` cuts that text where the
topic changes; ``pipeline`` writes the document, chunk and entity nodes with their edges, and
enqueues the enrichment jobs the weaver runs.
"""
