"""The caching layer: the engine (``bannertrack.cache``) configured for banners."""
