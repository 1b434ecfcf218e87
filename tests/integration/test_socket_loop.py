"""SocketLoop's hand-off from other threads: a sender that finds the loop awake skips the wake
byte, so a lost wake would leave frames in the outbox while the loop waits in poll()."""

from __future__ import annotations

import threading
import time

import zmq

from transport._zmq_loop import SocketLoop, apply_common_options

SENDERS = 4
FRAMES_EACH = 2_000
DEADLINE_S = 20.0


def test_every_frame_queued_from_many_threads_goes_out_with_no_other_traffic_to_wake_the_loop():
    context = zmq.Context()
    router = context.socket(zmq.ROUTER)
    apply_common_options(router)  # high-water marks well above the frames sent
    port = router.bind_to_random_port("tcp://127.0.0.1")
    dealer = context.socket(zmq.DEALER)
    apply_common_options(dealer)
    dealer.connect(f"tcp://127.0.0.1:{port}")
    loop = SocketLoop(dealer, lambda parts: None, name="test-loop")
    try:

        def send(sender: int) -> None:
            for i in range(FRAMES_EACH):
                loop.send([f"{sender}:{i}".encode()])
                if i % 97 == 0:
                    time.sleep(0.001)  # let the loop fall asleep in poll() now and then

        threads = [threading.Thread(target=send, args=(n,)) for n in range(SENDERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(DEADLINE_S)

        received: dict[int, list[int]] = {n: [] for n in range(SENDERS)}
        deadline = time.monotonic() + DEADLINE_S
        while sum(map(len, received.values())) < SENDERS * FRAMES_EACH:
            assert time.monotonic() < deadline, "frames stuck in the outbox: a wake was lost"
            if router.poll(100):
                _, body = router.recv_multipart()
                sender, index = body.decode().split(":")
                received[int(sender)].append(int(index))
        # One sender's frames leave in the order it queued them.
        assert all(indexes == list(range(FRAMES_EACH)) for indexes in received.values())
    finally:
        loop.close()
        router.close(linger=0)
        context.term()
