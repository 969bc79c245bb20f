"""Which screened candidates are timed in full, and the reason the others give."""

from figures import measured_variant

from optimize.choose.screening import near_misses, worth_timing


def _screened(name, p50, **figures):
    variant = measured_variant(name, p50, **figures)
    variant.timing = "screen"
    return variant


def test_only_candidates_that_could_still_win_are_timed_in_full():
    fastest = _screened("fast", 1.0)
    close = _screened("close", 1.1)
    slow = _screened("slow", 2.0)
    outside = _screened("outside", 0.5, verdict="mean cosine 0.9 < 0.999")
    chosen = worth_timing([slow, close, outside, fastest], most=6)
    assert chosen == [fastest, close]
    assert not fastest.not_timed_further and not close.not_timed_further
    assert slow.not_timed_further.startswith("screened at 2.0× the latency of original (1.000 ms)")
    assert outside.not_timed_further == "outside the limits, so it cannot be picked"


def test_a_noisy_screening_keeps_a_slower_candidate_in_the_running():
    fastest = _screened("fast", 1.0)
    noisy = _screened("noisy", 1.3, spread=0.3)
    assert worth_timing([fastest, noisy], most=6) == [fastest, noisy]


def test_at_most_the_given_number_are_timed_and_the_rest_say_so():
    ties = [_screened(f"v{i}", 1.0 + i / 100) for i in range(4)]
    assert worth_timing(ties, most=2) == ties[:2]
    assert all("2 faster ones were timed in full" in v.not_timed_further for v in ties[2:])


def test_candidates_already_timed_in_full_are_left_alone():
    done = measured_variant("done", 1.0)
    done.timing = "full"
    assert worth_timing([done], most=6) == []
    assert not done.not_timed_further


def test_the_pick_rests_on_a_full_timing_where_there_is_one():
    from optimize.choose.select import pick

    timed = measured_variant("timed", 1.05)
    timed.timing = "full"
    lucky = _screened("lucky", 1.0)  # screened a little faster, never timed in full
    assert pick([lucky, timed]) is timed
    assert pick([lucky]) is lucky


def test_timing_everything_in_full_leaves_out_only_what_breaks_the_limits():
    import math

    fast, slow = _screened("fast", 1.0), _screened("slow", 9.0)
    outside = _screened("outside", 0.5, verdict="mean cosine 0.9 < 0.999")
    assert worth_timing([slow, outside, fast], most=3, margin=math.inf) == [fast, slow]
    assert outside.not_timed_further


def test_a_candidate_just_past_the_noise_bar_is_screened_again_before_it_is_left_out():
    fastest = _screened("fast", 0.1)
    close = _screened("close", 0.11)  # within noise: in the running already
    just_past = _screened("just past", 0.15)
    unjudged = _screened("unjudged", 0.14)
    unjudged.fidelity = None
    stored = _screened("stored", 0.145)
    stored.measurements_cached = True  # kept from an earlier run: drawn already
    far = _screened("far", 0.2)
    outside = _screened("outside", 0.13, verdict="mean cosine 0.9 < 0.999")
    third = _screened("third", 0.155)
    field = [far, just_past, outside, stored, fastest, third, unjudged, close]
    assert near_misses(field) == [unjudged, just_past]
    # Runs of milliseconds draw alike from one session to the next.
    slow = [_screened("fast", 10.0), _screened("just past", 15.0)]
    assert near_misses(slow) == []
