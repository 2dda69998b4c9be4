"""The inbox of a SyncConnection: messages in order, and who reads the socket."""

from __future__ import annotations

import threading
import time

import pytest

from wscodec.sync.messages import Inbox, ReadTurn


@pytest.fixture
def inbox():
    return Inbox(4, grace=0.05)


def test_an_empty_inbox_hands_the_read_turn_to_the_caller(inbox):
    assert isinstance(inbox.enter_and_take(None, may_read=True), ReadTurn)
    # What the caller read comes straight back to it.
    assert inbox.end_read_and_take([b"one"], None, may_read=True) == b"one"
    assert inbox.app_waiting is False


def test_what_was_queued_first_comes_out_first(inbox):
    assert isinstance(inbox.enter_and_take(None, may_read=True), ReadTurn)
    inbox.put_nowait(b"queued")  # e.g. the leftover of the handshake
    assert inbox.end_read_and_take([b"read"], None, may_read=True) == b"queued"
    assert inbox.enter_and_take(None, may_read=True) == b"read"


def test_several_messages_read_at_once_are_taken_in_order(inbox):
    assert isinstance(inbox.enter_and_take(None, may_read=True), ReadTurn)
    assert inbox.end_read_and_take([b"a", b"b", b"c"], None, may_read=True) == b"a"
    assert [inbox.enter_and_take(None, may_read=True) for _ in range(2)] == [b"b", b"c"]


def test_a_closed_inbox_drains_then_says_none(inbox):
    inbox.put_nowait(b"last")
    inbox.close()
    assert inbox.enter_and_take(None, may_read=True) == b"last"
    assert inbox.enter_and_take(None, may_read=True) is None


def test_a_message_read_after_close_is_dropped(inbox):
    assert isinstance(inbox.enter_and_take(None, may_read=True), ReadTurn)
    inbox.close()
    assert inbox.end_read_and_take([b"late"], None, may_read=True) is None


def test_messages_read_while_discarding_are_dropped(inbox):
    assert isinstance(inbox.enter_and_take(None, may_read=True), ReadTurn)
    inbox.discard_new()
    inbox.close()
    assert inbox.end_read_and_take([b"dropped"], None, may_read=True) is None


def test_a_second_reader_waits_then_gets_the_turn(inbox):
    assert isinstance(inbox.enter_and_take(None, may_read=True), ReadTurn)
    results = []
    other = threading.Thread(
        target=lambda: results.append(inbox.enter_and_take(time.monotonic() + 5, True))
    )
    other.start()
    deadline = time.monotonic() + 5
    while inbox._idle == 0 and time.monotonic() < deadline:  # the other thread waits
        time.sleep(0.001)
    # The first reader keeps what it read; the waiting one may read next.
    assert inbox.end_read_and_take([b"mine"], None, may_read=True) == b"mine"
    other.join(5)
    assert len(results) == 1 and isinstance(results[0], ReadTurn)


def test_no_message_before_the_deadline_raises_timeout(inbox):
    with pytest.raises(TimeoutError):
        inbox.enter_and_take(time.monotonic() + 0.01, may_read=False)
    assert inbox.app_waiting is False
