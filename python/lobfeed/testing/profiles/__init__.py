"""Venue profiles of the local exchange server, one module per venue family.

``lobfeed.testing.server.profile_class_for`` imports ``profiles.<family>`` (the venue name up
to its first ``-``) the first time a tape of that venue is served; each module registers its
profile with ``@register_profile``.
"""
