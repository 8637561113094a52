"""Fast subsets of the fuzz run (64 broken files through every backend and a DataLoader) and of the memory soak.
The full runs (1,000 files, 20,000 reads per backend) are commands; their results are in docs/reliability.md."""
import logging

import pytest

from videossl.data.decode import available_decoders
from videossl.reliability.corpus import MUTATIONS, make_corpus
from videossl.reliability.fuzz import decode_everything, run_fuzz, run_isolated
from videossl.reliability.soak import soak_backend, soak_dataset


def test_corpus_is_deterministic_and_covers_every_kind(tmp_path):
    a = make_corpus(tmp_path / "a", 2 * len(MUTATIONS), seed=3)
    b = make_corpus(tmp_path / "b", 2 * len(MUTATIONS), seed=3)
    assert {c.kind for c in a} == set(MUTATIONS)
    assert [(c.path.name, c.note, c.must_fail) for c in a] == [(c.path.name, c.note, c.must_fail) for c in b]
    # seed-free kinds are byte-identical (encoded seeds are not: Matroska writes a random segment UID)
    seed_free = ("zero_length", "random_bytes", "text", "absurd_frame_size", "absurd_frame_rate")
    assert [c.path.read_bytes() for c in a if c.kind in seed_free] == \
        [c.path.read_bytes() for c in b if c.kind in seed_free]
    assert any(c.must_fail for c in a) and not all(c.must_fail for c in a)


def crash_on_second(path, _):
    import os

    from videossl.reliability.fuzz import Outcome

    if path == "crash":
        import faulthandler

        # meant to crash: without this the forked worker inherits pytest's faulthandler and prints a
        # "Fatal Python error: Aborted" block with a full stack dump into the test log, which reads like a real crash
        faulthandler.disable()
        os.abort()
    if path == "hang":
        import time

        time.sleep(60)
    return Outcome("ok")


def test_isolated_runner_reports_crashes_and_hangs_and_goes_on():
    results = run_isolated(crash_on_second, [("a", 0), ("crash", 0), ("hang", 0), ("b", 0)], timeout=5, workers=2)
    assert [r.status for r in results] == ["ok", "crash", "timeout", "ok"]


def test_fuzz_subset_every_backend_and_the_loader(tmp_path, caplog):
    caplog.set_level(logging.ERROR, logger="videossl.data")
    summary = run_fuzz(tmp_path, count=64, seed=1, timeout=60, workers=2)
    assert summary["problems"] == [], "\n".join(summary["problems"])
    for backend in available_decoders():
        counts = summary["backends"][backend]
        assert counts.get("clean_error", 0) >= 16 and sum(counts.values()) == 64  # must-fail files were rejected
        loader = summary["loader"][backend]
        assert loader["good_loaded_as_itself"] == loader["good_total"] == 10
        assert loader["substituted"] > 0 and loader["substituted_logged"] == loader["substituted"]


def test_decode_error_names_the_file_and_the_reason(tmp_path):
    path = tmp_path / "clip with spaces & (parens).mp4"
    path.write_bytes(b"not a video" * 10)
    for backend in available_decoders():
        outcome = decode_everything(str(path), backend)
        assert outcome.status == "clean_error" and outcome.reason.startswith(f"{path}: "), outcome


@pytest.mark.parametrize("backend", available_decoders())
def test_short_soak_keeps_memory_flat(backend, tmp_path_factory):
    paths = soak_dataset(tmp_path_factory.getbasetemp() / "soak", videos=4)
    result = soak_backend(paths, backend, reads=300, warmup=100)
    assert result["errors"] == 0
    assert result["growth_mb"] < 48, result  # the full 20,000-read run's numbers are in docs/reliability.md


def test_short_soak_through_the_dataset_reads_clips_and_audio(tmp_path_factory):
    paths = soak_dataset(tmp_path_factory.getbasetemp() / "soak", videos=4)
    result = soak_backend(paths, "pyav", reads=60, warmup=20, through_dataset=True)
    assert result["errors"] == 0 and result["through_dataset"]  # a wrong clip length or a skipped file counts as error
    assert result["growth_mb"] < 48, result
