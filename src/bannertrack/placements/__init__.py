"""Placements: spots on a page that serve their banners by weight, decided from memory.

- ``models``: the wire and cached values (``Placement``, its weighted banners, stats);
- ``rules``: what a banner's schedule and targeting may hold (the 400s);
- ``choice``: which banners are eligible for a request, and the weighted pick;
- ``caps``: the per-day frequency cap, counted in memory per visitor key;
- ``signing``: the signed click URL (``p``, ``ts``, ``sig``) and its verdicts;
- ``serve``: one ``GET /p/{id}`` from the cached candidates to the answer.
"""
