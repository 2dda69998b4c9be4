"""The runner of uvicorn's suite: how it pairs and judges the two implementations."""

from tests.asgi.uvicorn_suite import OURS, THEIRS, compare, split_ids


def test_fixture_ids_are_split_from_the_test_name():
    assert split_ids("test_x[wscodec-h11]") == ("test_x[h11]", OURS)
    assert split_ids("test_x[websockets-sansio-zttp-1000-a]") == ("test_x[zttp-1000-a]", THEIRS)
    assert split_ids("test_x[wscodec]") == ("test_x", OURS)
    assert split_ids("test_y[h11]") == ("test_y[h11]", None)


def test_a_test_that_only_theirs_passes_fails_the_run_unless_excused(capsys):
    outcomes = {
        ("test_a[h11]", THEIRS): "passed",
        ("test_a[h11]", OURS): "passed",
        ("test_b[h11]", THEIRS): "passed",
        ("test_b[h11]", OURS): "failed",
        ("test_c[h11]", THEIRS): "skipped",
        ("test_c[h11]", OURS): "failed",
    }
    assert compare(outcomes, {}) == 1
    assert "FAIL: test_b[h11]" in capsys.readouterr().out
    assert compare(outcomes, {"test_b": "a reason"}) == 0
    assert "excused: test_b[h11] (failed): a reason" in capsys.readouterr().out


def test_an_excuse_for_a_test_that_passes_is_stale():
    outcomes = {("test_a", THEIRS): "passed", ("test_a", OURS): "passed"}
    assert compare(outcomes, {"test_a": "no longer true"}) == 1


def test_no_test_at_all_fails():
    assert compare({}, {}) == 1


def test_importing_wscodec_never_imports_uvicorn():
    import subprocess
    import sys

    code = (
        "import sys, wscodec, wscodec.asgi, wscodec.asyncio, wscodec.integrations; "
        "print('uvicorn' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr
