"""docs/analytics.md has one SQL block per question of the data set's ``EXPECTED``.

The blocks run against the tables in ``test_analytics_tables.py`` (every SQL database).
"""

from __future__ import annotations

from tests.analytics.dataset import EXPECTED
from tests.analytics.tables import doc_queries


def test_the_doc_has_one_query_per_question() -> None:
    assert sorted(doc_queries()) == sorted(EXPECTED)
