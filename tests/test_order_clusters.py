"""类案 (issue 16, part 6): orders grouped by topic with the knowledge base's e5 model — two wordings of one request
together, other matters apart; weekly counts, the trend of the last week, examples nearest the centroid, and a
cluster near a known issue's centroid shown as known."""

from __future__ import annotations

from datetime import date

import pytest

from work_orders import clusters
from work_orders.embedding import EmbeddingError, embed

TEXTS = ["执行款什么时候能到账", "我的执行款一直没有到账", "网上立案怎么操作", "请问执行案款多久能发放",
         "怎么在网上立案", "诉讼费怎么交"]
DAYS = [date(2026, 12, 1), date(2026, 11, 25), date(2026, 11, 26), date(2026, 11, 30), date(2026, 12, 1),
        date(2026, 12, 2)]


@pytest.fixture(scope="module")
def vectors():
    try:
        return embed(TEXTS)
    except EmbeddingError as e:
        pytest.skip(f"the e5 model is not installed: {e}")


def test_orders_are_grouped_by_topic_with_weeks_and_trend(vectors):
    topics = clusters.topics(TEXTS, DAYS, vectors, until=date(2026, 12, 2))
    assert [sorted(TEXTS[i] for i in t.members) for t in topics] == [
        sorted(TEXTS[i] for i in (0, 1, 3)), sorted(TEXTS[i] for i in (2, 4))]  # 诉讼费 alone: not a cluster
    money = topics[0]
    assert money.size == 3 and money.weeks == {"2026-11-23": 1, "2026-11-30": 2}
    assert money.trend == 1 and topics[1].trend == 0  # the last week against the week before
    assert money.label in TEXTS and len(money.examples) == 3 and money.known is None


def test_a_known_issue_marks_the_cluster_near_it(vectors):
    first = clusters.topics(TEXTS, DAYS, vectors, until=date(2026, 12, 2))
    again = clusters.topics(TEXTS, DAYS, vectors, until=date(2026, 12, 2), known=[(7, first[1].centroid)])
    assert [t.known for t in again] == [None, 7]
