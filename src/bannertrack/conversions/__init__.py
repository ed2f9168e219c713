"""What a banner earned: conversions reported server to server, credited to the click
whose random id (the banner's ``click_id_param``) the site got in the Location.

``values`` (the report, the stored conversion, totals, money as exact decimals),
``currencies`` (ISO 4217), ``validation`` (a report's rules), ``rules`` (the attribution
window), ``recording`` (report -> store), ``export`` (CSV). The SQL is in
``db.conversion_writes`` and ``db.conversion_queries``; HTTP in ``api.conversions``.
"""
