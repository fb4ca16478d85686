"""The data folder in the admin: a browser of KOOP["DATA_DIR"] and uploads into it.

``SourceWidget`` is the widget of "location" options (a file path or a URL).
"""

from __future__ import annotations

from django import forms


class SourceWidget(forms.TextInput):
    """A path relative to the data folder, or an http(s) URL."""
