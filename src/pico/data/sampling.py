"""Section 3.3: which frames of a video become views -- anchor sampling, or random frames.

Anchor sampling (our reading of Section 3.3, where the text is ambiguous): draw an anchor
uniformly among the frames on which at least one trajectory is active; for every trajectory
active on the anchor take its endpoint (first or last frame) furthest in time from the anchor
(ties: the later one); count those endpoints per frame; the selected frames are the anchor
itself plus the N - 1 other frames with the most endpoints (ties: the earlier frame; frames
with no endpoint are never selected, so fewer than N frames may come back).

Why the anchor is one of the N: every counted trajectory is alive on the anchor and on its
counted endpoint (and everywhere between), so each pair (anchor, selected frame) has a known
set of correspondences, as temporally separated as the trajectories allow. Without the anchor,
two endpoint frames on opposite sides of it would share no counted trajectory, and the method
would not maximise "temporal separation and trajectory density" between the views it trains on.
The anchor comes first in the returned list.

What counts as an endpoint (``sampling.endpoints``; Section 3.3 does not say): a trajectory's
first frame, and its last frame where tracking stopped it (the point left the frame or failed
Eq. 3: ``pico.data.tracks`` records why each track ended). With ``observed`` (the default) a track
that was still alive when the snippet ended has no endpoint there: the snippet's last frame is
where observation stops, not where the trajectory does, and counting it makes the last frame
the partner of most anchors (97-100 % of the demo's anchor draws with forward-only tracks, each
surviving track "ending" at T - 1), so the frames picked say more about the snippet's length
than about the trajectories. ``all`` counts it like any other end (the earlier reading).
"""

from __future__ import annotations

import numpy as np

from pico.data.tracks import END_SNIPPET


def spans(track_ids: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First and last frame of each track, from rows sorted by track then t."""
    first = np.r_[True, track_ids[1:] != track_ids[:-1]]  # the id changes: a track starts here
    last = np.r_[track_ids[1:] != track_ids[:-1], True]  # ... and the previous one ended a row before
    return t[first], t[last]


def end_reasons(track_ids: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Why each track ended (``pico.data.tracks``' codes on its last row), from rows sorted by track then t."""
    return end[np.r_[track_ids[1:] != track_ids[:-1], True]] if len(track_ids) else end[:0]


def anchor_frames(
    start: np.ndarray, end: np.ndarray, censored: np.ndarray, n_frames: int, n: int, rng: np.random.Generator
) -> list[int]:
    """Anchor sampling (Section 3.3) over trajectories spanning [start, end] (inclusive): a
    random anchor frame a (one some trajectory spans); for each trajectory active on a, its
    endpoint furthest from a (its end does not count where ``censored``); the frames are a
    and up to n - 1 others, those with the most endpoints (ties: the earlier). Anchor first."""
    # tracks alive per frame as a difference array: +1 where a track starts, -1 after it ends,
    # so the cumulative sum counts the tracks spanning each frame, without a loop over tracks
    covered = np.zeros(n_frames + 1, np.int64)
    np.add.at(covered, start, 1)
    np.add.at(covered, end + 1, -1)
    candidates = np.flatnonzero(np.cumsum(covered)[:n_frames] > 0)
    if len(candidates) == 0:
        return []
    anchor = int(rng.choice(candidates))
    active = (start <= anchor) & (anchor <= end)
    s, e = start[active], end[active]
    far = np.where(censored[active] | (anchor - s > e - anchor), s, e)  # the furthest endpoint (ties: the end)
    counts = np.bincount(far, minlength=n_frames)
    counts[anchor] = 0
    order = np.lexsort((np.arange(n_frames), -counts))  # most endpoints first, then earlier
    return [anchor] + [int(f) for f in order[: n - 1] if counts[f] > 0]


def random_frames(n_frames: int, n: int, rng: np.random.Generator) -> list[int]:
    """``n`` distinct frames drawn uniformly (the usual practice for video views)."""
    return [int(f) for f in rng.choice(n_frames, size=min(n, n_frames), replace=False)]


def select(
    strategy: str,
    start: np.ndarray,
    end: np.ndarray,
    ends: np.ndarray,
    n_frames: int,
    n: int,
    rng: np.random.Generator,
    *,
    endpoints: str = "observed",
) -> list[int]:
    """Frames of one video by ``strategy`` (``anchor`` or ``random``) from its tracks' spans
    [start, end] and end reasons ``ends``; ``endpoints``: ``observed`` or ``all`` (above)."""
    if strategy == "anchor":
        censored = (ends == END_SNIPPET) if endpoints == "observed" else np.zeros(len(ends), bool)
        return anchor_frames(start, end, censored, n_frames, n, rng)
    return random_frames(n_frames, n, rng)
