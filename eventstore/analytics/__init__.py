"""Analytics tables kept up to date from the feed: ``eventstore analytics`` (docs/analytics.md).

``projection`` turns events into rows (sessions, turns, messages, actions, slot changes),
``writer`` applies a batch in one transaction, ``runner`` drives the feed with the
checkpoint committed alongside the rows. The tables are in
``eventstore.stores.sql.analytics_schema`` (revision 0008).
"""
