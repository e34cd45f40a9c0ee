"""What a reader sees: figures (``plots``), the report's tables and sentences (``tables``; the method comparison's
in ``method_tables``), the README's findings (``findings``) and the PDF (``pdf``: ``python -m cnnlib.report.pdf``)."""
