"""Token security (generateToken, authInfo) and per-dataset access, ArcGIS Server style.

    credentials.py  who is asking: a token (header or ``token=``) or a staff admin session
    tokens.py       signed, expiring tokens; revoked by sign-out, a disabled user, a new password
    access.py       per-dataset access and the provider's own ``authorize``: 499 / 498 / 403
    service.py      ``authInfo`` and ``generateToken``
    drf.py          the DRF authentication and permission classes the GeoServices views use
    guards.py       the same gate for other outputs' views and providers' extra routes
    signals.py      sign-out bumps the user's token generation
"""
