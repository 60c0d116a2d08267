"""The binary search of rngtrace bisect (rngtrace.cli.search), without git."""

from __future__ import annotations

from rngtrace.cli.search import Search


def _run_search(n: int, truth) -> tuple[list[int], Search]:
    search, order = Search(n), []
    while (i := search.next()) is not None:
        order.append(i)
        search.mark(i, truth(i))
    return order, search


def test_search_halves_and_skips_as_git_bisect_skip_does():
    # 21 commits after GOOD (0..20, BAD is 20); the first to differ is 12; 9 cannot run.
    # lo=-1 hi=20: mid 9, skipped; its nearest neighbours 8 and 10 tie: 8, same (lo=8);
    # mid (8+20)//2=14 differs (hi=14); mid 11 same (lo=11); mid 12 differs (hi=12): done
    order, search = _run_search(21, lambda i: "skipped" if i == 9 else
                                "differs" if i >= 12 else "same")
    assert order == [9, 8, 14, 11, 12]
    assert search.candidates() == [12]
    assert Search(21).steps_left() == 4  # 20 commits between GOOD and BAD: 2**4 <= 21


def test_search_names_every_candidate_when_skipped_commits_hide_the_first():
    # 11 cannot run and 12 is the first to differ: 9 same, 14 differs, 11 skipped, 10
    # same, 12 differs; 11 may be the first as well as 12
    order, search = _run_search(21, lambda i: "skipped" if i == 11 else
                                "differs" if i >= 12 else "same")
    assert order == [9, 14, 11, 10, 12]
    assert search.candidates() == [11, 12]


def test_search_of_one_commit_tests_nothing_more():
    assert Search(1).next() is None and Search(1).candidates() == [0]
