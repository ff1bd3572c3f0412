"""Progress lines (``pico.logs.Progress``, ``pico.logs.progress``): throttled by time and by
share of the total, the first and the last item always, the item named; a fake clock, no sleeps."""

import logging

import pytest

from pico import logs

log = logging.getLogger("pico.test_logs")


class Clock:
    """A clock that stands still until a test moves it."""

    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def lines(caplog):
    """The messages logged so far, as a function."""
    caplog.set_level(logging.INFO, log.name)
    return lambda: [r.getMessage() for r in caplog.records if r.name == log.name]


def test_the_first_and_the_last_item_always_log(lines):
    clock = Clock()
    progress = logs.Progress(log, "flow", 1000, clock=clock)
    logged = [progress.update(i) for i in range(1, 1001)]
    assert [i for i, was in enumerate(logged, 1) if was] == [1, 1000]  # the clock never moved
    assert lines()[0].startswith("flow: 1/1000 (") and lines()[1].startswith("flow: 1000/1000 (")


def test_lines_wait_for_both_the_interval_and_a_share_of_the_total(lines):
    clock = Clock()
    progress = logs.Progress(log, "probe", 1000, seconds=5.0, fraction=0.01, clock=clock)
    progress.update(1)
    clock.now += 60
    assert not progress.update(5)  # a minute on, but 4 items are less than 1 % of 1,000
    assert progress.update(11)  # 10 items past the last line: 1 %
    clock.now += 4.0
    assert not progress.update(500)  # half the loop on, but under 5 s since the last line
    clock.now += 1.0
    assert progress.update(501)
    assert [line.split(" (")[0] for line in lines()] == ["probe: 1/1000", "probe: 11/1000", "probe: 501/1000"]


def test_a_short_loop_is_throttled_by_time_alone(lines):
    """60 iterations: 1 % is less than one item, so every item may log once 5 s have passed."""
    clock = Clock()
    progress = logs.Progress(log, "probe", 60, clock=clock)
    for i in range(1, 61):
        clock.now += 1.0
        progress.update(i, detail=f"loss {1 / i:.4f}")
    assert [line.split(" ")[1] for line in lines()] == ["1/60", *(f"{i}/60" for i in range(6, 60, 5)), "60/60"]
    assert lines()[1] == "probe: 6/60 loss 0.1667 (6.0 s elapsed, ETA 54.0 s)"


def test_a_line_names_its_item_and_a_resumed_run_times_its_own_items(lines):
    clock = Clock()
    progress = logs.Progress(log, "pretrain", 100, start=50, clock=clock)
    clock.now += 10
    progress.update(60, item="abc123.mp4", detail="loss 1.0000")
    assert lines() == ["pretrain: 60/100 (abc123.mp4) loss 1.0000 (10.0 s elapsed, ETA 40.0 s)"]


def test_progress_yields_every_item_and_names_those_it_logs(lines):
    clock = Clock()
    rows = [{"video": f"v{i}"} for i in range(300)]

    def moving():
        for row in rows:
            clock.now += 0.5
            yield row

    seen = list(logs.progress(moving(), len(rows), "frames", log, name=lambda row: row["video"], clock=clock))
    assert seen == rows
    assert [line.split(" (")[0] for line in lines()][:3] == ["frames: 1/300", "frames: 11/300", "frames: 21/300"]
    assert lines()[-1].startswith("frames: 300/300 (v299) (")
    assert len(lines()) == 2 + 299 // 10


def test_a_detail_given_as_a_function_is_built_only_for_a_line_logged(lines):
    clock = Clock()
    progress = logs.Progress(log, "maskrcnn", 100, clock=clock)
    built = []

    def detail(i):
        return lambda: built.append(i) or f"loss {i}"

    for i in range(1, 101):
        progress.update(i, detail=detail(i))
    assert built == [1, 100]  # the clock never moved: the first and the last line
    assert [line.split(" (")[0] for line in lines()] == ["maskrcnn: 1/100 loss 1", "maskrcnn: 100/100 loss 100"]
