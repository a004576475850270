"""Chat rooms and live blogs for Django, over Channels."""

__version__ = "0.1.0"
