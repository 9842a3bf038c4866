"""The web page: one HTML shell plus static JS/CSS that work entirely through the public API."""
