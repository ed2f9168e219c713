"""bannertrack: banner click tracking with a fast, correct cache in front of the database."""

__version__ = "0.1.0"
