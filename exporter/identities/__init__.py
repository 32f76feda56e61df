"""Identity sources: how a target obtains the credentials its Thanos component really uses.

One module per source (the APScheduler plug-in shape): `base` holds the small interface, `registry` maps a
config's `source:` to its implementation, and `cache` refreshes credentials before they expire.
"""
